// Fuzz target: the config compiler and `outrigger validate` with hostile YAML give `file:line: reason` errors, never a throw, crash or hang, and a reload keeps the last good config.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validate } from '../../src/cli/validate.ts'
import { send } from '../harness/client.ts'
import { egressSidecar, loopbackService, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'
import { fuzzParameters, fuzzTimeout } from './fuzz-budget.ts'
import { hostileResourceFile } from './hostile-yaml.ts'

/** How long one validation may take: the biggest generated file (4 MiB, 3000 documents) takes ~2 s alone. */
const VALIDATE_BOUND_MS = 10_000

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-fuzz-config-'))
  await mkdir(join(dir, 'istio'))
  await writeFile(
    join(dir, 'bootstrap.yaml'),
    `node: {workload: fuzz, namespace: default, serviceAccount: default, labels: {app: fuzz}}
listeners:
  admin: {port: 15000, address: 127.0.0.1}
  health: {port: 15021}
resources: [./istio/]
`,
  )
})

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** Runs `outrigger validate` in this process on the bootstrap (so the compiler runs too) and returns its lines. */
async function validateText(text: string): Promise<{ code: number; lines: string[]; ms: number }> {
  await writeFile(join(dir, 'istio', 'fuzz.yaml'), text)
  let output = ''
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output += chunk.toString()
      done()
    },
  })
  const started = performance.now()
  const code = await validate([join(dir, 'bootstrap.yaml')], sink)
  return { code, lines: output.split('\n').filter((line) => line !== ''), ms: performance.now() - started }
}

describe('config compiler fuzz', () => {
  it(
    'reports every problem of a hostile file as file:line: reason, within a bound',
    async () => {
      await fc.assert(
        fc.asyncProperty(hostileResourceFile, async (text) => {
          const { code, lines, ms } = await validateText(text)
          expect(ms).toBeLessThan(VALIDATE_BOUND_MS)
          expect([0, 1]).toContain(code)
          const lineCount = text.split('\n').length + 1
          for (const line of lines) {
            if (line.startsWith('valid: ')) continue
            const located = /^(.+?):(\d+): /.exec(line)
            expect(located, line.slice(0, 200)).not.toBeNull()
            if (located?.[1].endsWith('fuzz.yaml')) {
              expect(Number(located[2])).toBeGreaterThanOrEqual(1)
              expect(Number(located[2])).toBeLessThanOrEqual(lineCount)
            }
          }
          if (code === 1) expect(lines.some((line) => line.includes('fuzz.yaml:'))).toBe(true)
        }),
        fuzzParameters('config-compiler validate', 60),
      )
    },
    fuzzTimeout(60_000),
  )
})

describe('config reload fuzz', () => {
  let proxy: ProxyProcess
  let app: Upstream
  let egress: number

  beforeAll(async () => {
    ;[egress] = await freePorts(1)
    app = await startUpstream('app')
    proxy = await startProxy({
      resources: {
        'sidecar.yaml': egressSidecar(egress),
        'services.yaml': yamlStream(loopbackService('app', 80, app.port)),
      },
    })
  })

  afterAll(async () => {
    await proxy?.stop()
    await app?.close()
  })

  async function reloads(): Promise<number> {
    const dump = (await (await proxy.admin('/config_dump')).json()) as {
      reloads: { succeeded: number; failed: number }
    }
    return dump.reloads.succeeded + dump.reloads.failed
  }

  it(
    'a running proxy given a hostile file on reload keeps serving',
    async () => {
      let run = 0
      await fc.assert(
        fc.asyncProperty(hostileResourceFile, async (text) => {
          const before = await reloads()
          // The run number makes every text new to the file watcher, even when the generator repeats one.
          await proxy.writeResource('fuzz.yaml', `# run ${run++}\n${text}`)
          await eventually(async () => (await reloads()) > before, 15_000)
          expect(proxy.child.exitCode).toBeNull()
          const reply = await send(egress, 'app', '/after-reload')
          expect(reply.status).toBe(200)
          expect((await fetch(`http://127.0.0.1:${proxy.healthPort}/healthz/ready`)).status).toBe(200)
        }),
        fuzzParameters('config-compiler reload', 8),
      )
    },
    fuzzTimeout(60_000),
  )
})
