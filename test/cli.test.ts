// Scenario: the `outrigger` command line: version, validate (exit codes and file:line output), usage errors.

import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mainScript, repoRoot, startProxy } from './harness/proxy-process.ts'

let dir: string

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainScript, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-cli-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('outrigger CLI', () => {
  it('version prints the package version', () => {
    const r = cli('version')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^outrigger \d+\.\d+\.\d+ \(node v24\./)
  })

  it('the package bin runs the same CLI', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'outrigger.js'), 'version'], {
      encoding: 'utf8',
    })
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^outrigger \d+\.\d+\.\d+/)
  })

  it('validate accepts the bundled default bootstrap and its resources', () => {
    const r = cli('validate', join(repoRoot, 'config', 'default.yaml'))
    expect(r.stdout).toContain('valid:')
    expect(r.stdout).not.toContain('warning')
    expect(r.code).toBe(0)
  })

  it('validate warns by name, with the line, about bootstrap keys not built yet, and exits 0', async () => {
    const file = join(dir, 'unbuilt.yaml')
    await writeFile(
      file,
      `node: {workload: x}
listeners:
  inbound: {port: 15006}
tls: {certChain: c.pem, privateKey: k.pem, rootCert: r.pem}
telemetry:
  accessLog: {encoding: JSON}
`,
    )
    const r = cli('validate', file)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(
      `${file}:3: warning: field 'listeners.inbound' is used only with traffic capture`,
    )
    // The stats port is served now (Istio's 15090): no warning for it.
    expect(r.stdout).not.toContain(`warning: field 'listeners.stats'`)
    expect(r.stdout).not.toContain(`warning: field 'tls'`)
    expect(r.stdout).not.toContain(`warning: field 'telemetry'`)
  })

  it('validate accepts the capture modes, and rejects an unknown one', async () => {
    const file = join(dir, 'capture.yaml')
    for (const mode of ['iptables', 'tproxy']) {
      await writeFile(file, `node: {workload: x}\ncapture: ${mode}\n`)
      const validated = cli('validate', file)
      expect(validated.stdout).toContain('valid:')
      expect(validated.code).toBe(0)
    }
    await writeFile(file, 'node: {workload: x}\ncapture: ebpf\n')
    const rejected = cli('validate', file)
    expect(rejected.code).toBe(1)
    expect(rejected.stdout).toContain(`${file}:2: field 'capture': invalid value "ebpf"`)
  })

  it('run logs the bootstrap warnings as file:line and shows them in /config_dump', async () => {
    const proxy = await startProxy({
      resources: {},
      extraListeners: '  inbound: {port: 15006}\n',
    })
    try {
      const bootstrapFile = join(proxy.dir, 'bootstrap.yaml')
      const line = (await readFile(bootstrapFile, 'utf8')).split('\n').indexOf('  inbound: {port: 15006}') + 1
      const expected = `${bootstrapFile}:${line}: warning: field 'listeners.inbound' is used only with traffic capture`
      expect(proxy.stderr()).toContain(expected)
      const dump = (await (await proxy.admin('/config_dump')).json()) as {
        model: { warnings: { file: string; line: number; message: string }[] }
      }
      expect(dump.model.warnings).toContainEqual(
        expect.objectContaining({
          file: bootstrapFile,
          line,
          message: expect.stringContaining("'listeners.inbound'"),
        }),
      )
    } finally {
      await proxy.stop()
    }
  })

  it('validate reports file:line: reason for each error and exits 1', async () => {
    const file = join(dir, 'bad.yaml')
    await writeFile(
      file,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [reviews]
  http:
    - route:
        - destination: {host: reviews}
          wieght: 10
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [a]
  ports: [{number: 70000, name: http}]
`,
    )
    const r = cli('validate', file)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${file}:9: `)
    expect(r.stdout).toMatch(/wieght/)
    expect(r.stdout).toContain(`${file}:16: `)
  })

  it('validate reports warnings for unsupported fields but exits 0', async () => {
    const file = join(dir, 'warn.yaml')
    await writeFile(
      file,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: w}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews}}]
      delegate: {name: other}
`,
    )
    const r = cli('validate', file)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`${file}:8: warning: .*delegate`))
  })

  it('validate reports a bad bootstrap with its line', async () => {
    const file = join(dir, 'bootstrap.yaml')
    await writeFile(file, 'node:\n  workload: x\nlisteners:\n  admin: {port: banana}\n')
    const r = cli('validate', file)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${file}:4: `)
  })

  it('run refuses an invalid config at start with file:line and exit 1', async () => {
    await writeFile(
      join(dir, 'run.yaml'),
      `resources: [./broken.yaml]\nlisteners: {admin: {port: 0}, health: {port: 0}}\n`,
    )
    await writeFile(
      join(dir, 'broken.yaml'),
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n',
    )
    const r = cli('run', '--config', join(dir, 'run.yaml'))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${join(dir, 'broken.yaml')}:2: `)
  })

  it('unknown commands print usage and exit 2', () => {
    const r = cli('frobnicate')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('usage:')
  })
})
