import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadBootstrap } from '../bootstrap/load.ts'
import { loadResources } from './load.ts'
import { ConfigError, formatMessage } from './messages.ts'
import { readBootstrapElsewhere, readResourcesElsewhere } from './read-config.ts'

const sidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  egress:
    - port: {number: 9080, protocol: HTTP, name: http}
      hosts: ["./*"]
  outboundTrafficPolicy:
    mode: ALLOW_ANY
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.example.com]
  ports: [{number: 9080, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: broken}
spec:
  hosts: [broken.example.com]
  unknownField: 1
`

/** The 1-based line of the first line of `sidecar` that contains `needle`. */
const lineWith = (needle: string): number =>
  sidecar.split('\n').findIndex((line) => line.includes(needle)) + 1

describe('config read in a child process', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-read-config-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('gives the same resources and messages as reading in this process', async () => {
    const file = join(dir, 'config.yaml')
    await writeFile(file, sidecar)
    const here = await loadResources([file], 'default')
    const there = await readResourcesElsewhere([file], 'default')
    try {
      const plain = (r: { lineOf: unknown }) => ({ ...r, lineOf: undefined })
      expect(there.resources.map(plain)).toEqual(here.resources.map(plain))
      expect(there.messages).toEqual(here.messages)
      expect(there.messages.map(formatMessage).join('\n')).toContain(`${file}:${lineWith('unknownField')}:`)
      expect(there.files).toEqual(here.files)
    } finally {
      there.close()
    }
  })

  it("answers the compiler's lines as the resource's own lineOf does, until closed", async () => {
    const file = join(dir, 'config.yaml')
    await writeFile(file, sidecar)
    const here = await loadResources([file], 'default')
    const there = await readResourcesElsewhere([file], 'default')
    const questions: [number, (string | number)[]][] = [
      [0, ['outboundTrafficPolicy', 'mode']],
      [0, ['egress', 0, 'hosts']],
      [1, ['ports', 0, 'name']],
      [1, ['nope']],
    ]
    const asked = questions.map(([index, path], i) => ({
      severity: 'warning' as const,
      file,
      line: there.resources[index].lineOf(path),
      message: String(i),
    }))
    const resolved = await there.resolveLines(asked)
    const lines = resolved.map((m) => m.line)
    expect(lines).toEqual(questions.map(([index, path]) => here.resources[index].lineOf(path)))
    // …which are the lines of those fields, or of the resource's spec when the field is absent.
    expect(lines).toEqual([
      lineWith('mode: ALLOW_ANY'),
      lineWith('hosts: ["./*"]'),
      lineWith('ports: [{number: 9080'),
      lineWith('name: reviews') + 1,
    ])
    there.close()
    // Closed: the reader is gone, so a question falls back to the resource's first line.
    const late = await there.resolveLines([{ ...asked[0], line: there.resources[1].lineOf(['hosts']) }])
    expect(late.map((m) => m.line)).toEqual([there.resources[1].source.line])
  })

  it('the reader that read the bootstrap reads the resources next, in the same process', async () => {
    await mkdir(join(dir, 'istio'))
    await writeFile(join(dir, 'istio', 'config.yaml'), sidecar)
    const file = join(dir, 'bootstrap.yaml')
    await writeFile(file, 'node: {workload: w, namespace: shop}\nresources: [./istio/]\n')
    const { bootstrap, reader } = await readBootstrapElsewhere(file)
    const pid = reader.pid
    const read = await readResourcesElsewhere(bootstrap.resources, bootstrap.node.namespace, reader)
    try {
      expect(reader.pid).toBe(pid)
      expect(read.resources.map((r) => `${r.kind} ${r.namespace}/${r.name}`)).toEqual([
        'Sidecar shop/default',
        'ServiceEntry shop/reviews',
      ])
    } finally {
      read.close()
    }
    // Closed, it is gone: a read given it starts a new reader instead.
    await new Promise((resolve) => setTimeout(resolve, 200))
    const again = await readResourcesElsewhere(bootstrap.resources, bootstrap.node.namespace, reader)
    again.close()
    expect(again.resources).toHaveLength(2)
  })

  it('reads the bootstrap, and rejects a bad one with its file:line reason', async () => {
    const file = join(dir, 'bootstrap.yaml')
    await writeFile(file, 'node: {workload: w, namespace: shop}\nresources: [./istio/]\n')
    const { bootstrap, reader } = await readBootstrapElsewhere(file)
    reader.close()
    expect(bootstrap).toEqual(await loadBootstrap(file))
    await writeFile(file, 'node: {workload: w}\ncapture: sometimes\n')
    const error = await readBootstrapElsewhere(file).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).messages.map(formatMessage).join('\n')).toMatch(
      new RegExp(`${file}:2: .*capture`),
    )
  })
})
