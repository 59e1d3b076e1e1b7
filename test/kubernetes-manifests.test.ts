// deploy/kubernetes/ is what `outrigger inject` makes of the example app, valid for Kubernetes, with a bootstrap and resources the proxy accepts; the inject CLI's exit codes.

import { spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { bootstrapSchema } from '../src/bootstrap/schema.ts'
import { parseDurationMs } from '../src/config/duration.ts'
import { loadResources } from '../src/config/load.ts'
import { validateManifest } from './harness/kubernetes-schemas.ts'
import { mainScript, repoRoot } from './harness/proxy-process.ts'

const deployDir = join(repoRoot, 'deploy', 'kubernetes')
let dir: string

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [mainScript, ...args], { encoding: 'utf8', input, timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The pod spec of the Deployment in deploy/kubernetes/hello.yaml. */
async function helloPodSpec(): Promise<Record<string, unknown>> {
  const deployment = (await documents(join(deployDir, 'hello.yaml'))).find((doc) => doc.kind === 'Deployment')
  if (deployment === undefined) throw new Error('hello.yaml has no Deployment')
  return (deployment.spec as { template: { spec: Record<string, unknown> } }).template.spec
}

async function documents(file: string): Promise<Record<string, unknown>[]> {
  return parseAllDocuments(await readFile(file, 'utf8')).map((doc) => doc.toJS() as Record<string, unknown>)
}

interface ConfigMap {
  metadata: { name: string }
  data: Record<string, string>
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-kubernetes-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('deploy/kubernetes', () => {
  it('hello.yaml is exactly what outrigger inject prints for source/hello.yaml', async () => {
    const r = cli([
      'inject',
      '-f',
      join(deployDir, 'source', 'hello.yaml'),
      '--image',
      'localhost/outrigger:0.1.0',
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(await readFile(join(deployDir, 'hello.yaml'), 'utf8'))
  })

  it('every manifest is valid against the Kubernetes schemas', async () => {
    const files = (await readdir(deployDir)).filter((name) => name.endsWith('.yaml'))
    expect(files.sort()).toEqual(['hello.yaml', 'outrigger-config.yaml'])
    for (const file of [
      ...files.map((name) => join(deployDir, name)),
      join(deployDir, 'source', 'hello.yaml'),
    ]) {
      for (const doc of await documents(file)) validateManifest(doc)
    }
  })

  it("the bootstrap ConfigMap is the one the Deployment mounts, at the path the sidecar's --config names", async () => {
    const [bootstrapMap] = (await documents(
      join(deployDir, 'outrigger-config.yaml'),
    )) as unknown as ConfigMap[]
    const spec = await helloPodSpec()
    const volumes = spec.volumes as { name: string; configMap?: { name: string } }[]
    const proxy = (spec.initContainers as { name: string; args: string[] }[])[1]
    expect(volumes.find((v) => v.name === 'outrigger-bootstrap')?.configMap?.name).toBe(
      bootstrapMap.metadata.name,
    )
    expect(proxy.args).toEqual([
      'run',
      '--config',
      `/etc/outrigger/bootstrap/${Object.keys(bootstrapMap.data)[0]}`,
    ])
  })

  it('the bootstrap is valid (capture: iptables, listeners on 15001/15006 land on other branches) and drains within the grace period', async () => {
    const [bootstrapMap] = (await documents(
      join(deployDir, 'outrigger-config.yaml'),
    )) as unknown as ConfigMap[]
    const bootstrap = parseAllDocuments(bootstrapMap.data['bootstrap.yaml'])[0].toJS() as Record<
      string,
      unknown
    >
    expect(bootstrap.capture).toBe('iptables')
    expect(bootstrap.resources).toEqual(['/etc/outrigger/istio/'])
    expect(bootstrap.tls).toEqual({
      certChain: '/etc/certs/cert-chain.pem',
      privateKey: '/etc/certs/key.pem',
      rootCert: '/etc/certs/root-cert.pem',
    })
    // Only errors count: until capture lands, the capture listeners are accepted with a warning.
    const parsed = bootstrapSchema.safeParse({ ...bootstrap, capture: 'none' })
    const errors = (parsed.error?.issues ?? []).filter(
      (issue) => !('params' in issue && issue.params?.warning === true),
    )
    expect(errors).toEqual([])
    const grace = Number((await helloPodSpec()).terminationGracePeriodSeconds)
    expect(parseDurationMs(String(bootstrap.terminationDrainDuration))).toBeLessThan(grace * 1000)
  })

  it('the Istio resources ConfigMap holds resources the proxy loads without a problem', async () => {
    const [, resourcesMap] = (await documents(
      join(deployDir, 'outrigger-config.yaml'),
    )) as unknown as ConfigMap[]
    expect(resourcesMap.metadata.name).toBe('outrigger-istio')
    const files: string[] = []
    for (const [name, text] of Object.entries(resourcesMap.data)) {
      files.push(join(dir, name))
      await writeFile(join(dir, name), text)
    }
    const loaded = await loadResources(files, 'default')
    expect(loaded.messages).toEqual([])
    expect(loaded.resources.map((r) => r.kind).sort()).toEqual(['PeerAuthentication', 'ServiceEntry'])
  })
})

describe('outrigger inject (CLI)', () => {
  it('reads stdin with -f -, and reports malformed YAML as <stdin>:line with exit 1 and no output', () => {
    const ok = cli(
      ['inject', '-f', '-'],
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b}]\n',
    )
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain('name: istio-proxy')
    expect(ok.stdout).toContain('image: localhost/outrigger:')
    const bad = cli(['inject', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [p\n')
    expect(bad.code).toBe(1)
    expect(bad.stdout).toBe('')
    expect(bad.stderr).toMatch(/^<stdin>:\d+: invalid YAML/)
  })

  it('exits 2 without -f, and 1 with the file name when the file cannot be read', () => {
    expect(cli(['inject']).code).toBe(2)
    const missing = cli(['inject', '-f', join(dir, 'nope.yaml')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('nope.yaml')
  })
})
