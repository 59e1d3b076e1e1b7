// Fuzz target: VirtualService regex matches (RE2 as in Istio and Envoy) with adversarial patterns and paths: linear-time matching, RE2-invalid patterns refused with file:line.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validate } from '../../src/cli/validate.ts'
import { re2Problem } from '../../src/config/istio/re2.ts'
import { compileStringMatch } from '../../src/route/string-match.ts'
import { sendRaw } from '../harness/client.ts'
import { egressSidecar, loopbackService, virtualService, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'
import { fuzzParameters, fuzzTimeout } from './fuzz-budget.ts'

/** One match of an accepted pattern against one path: RE2 is linear, so this holds even on a loaded CI machine. */
const MATCH_BOUND_MS = 250

/** Regex source text from a small grammar that reaches backtracking bombs, RE2's refusals and big programs. */
const regexSource: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('a', 'b', '/', '\\.', '.', '[a-z]', '[^/]', '\\w', '\\d', '\\s', '%2e', '^', '$', ''),
    fc.tuple(tie('node'), tie('node')).map(([x, y]) => x + y),
    fc.tuple(tie('node'), tie('node')).map(([x, y]) => `(${x}|${y})`),
    fc
      .tuple(
        tie('node'),
        fc.constantFrom('*', '+', '?', '{2}', '{1,3}', '{0,999}', '{1000}', '{1001}', '*?', '*+', '**'),
      )
      .map(([x, q]) => `(?:${x})${q}`),
    tie('node').map((x) => `(${x})`),
    // What RE2 refuses: lookaround, backreferences, unbalanced groups.
    fc.tuple(tie('node'), fc.constantFrom('(?=', '(?!', '(?<=', '(?<!')).map(([x, look]) => `${look}${x})`),
    tie('node').map((x) => `(${x})\\1`),
    fc.constantFrom('(', ')', '[', '\\'),
  ),
})).node

/** Patterns RE2 must refuse whatever surrounds them. */
const re2Unsupported = /\(\?<?[=!]|\\[1-9]/

/** Paths that make backtracking engines explode: long runs of one character with a mismatch at the end. */
const hostilePath = fc
  .tuple(
    fc.constantFrom('a', 'ab', '/a', 'aa/', '%2e', '.'),
    fc.integer({ min: 0, max: 8192 }),
    fc.constantFrom('', '!', 'b', '/', '\u0000'),
  )
  .map(([unit, count, tail]) => `/${unit.repeat(Math.ceil(count / unit.length))}${tail}`)

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-fuzz-regex-'))
})

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** `outrigger validate` (in this process) on a VirtualService whose uri regex is `pattern`, on line 10. */
async function validateRegex(pattern: string): Promise<{ code: number; output: string }> {
  const file = join(dir, 'vs.yaml')
  await writeFile(
    file,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - uri:
        regex: ${JSON.stringify(pattern)}
    route:
    - destination: {host: reviews}
`,
  )
  let output = ''
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output += chunk.toString()
      done()
    },
  })
  return { code: await validate([file], sink), output }
}

describe('route regex fuzz', () => {
  it(
    'an accepted pattern matches any path within a bound; a refused one is reported at its line',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          regexSource,
          fc.array(hostilePath, { minLength: 1, maxLength: 4 }),
          async (pattern, paths) => {
            const problem = re2Problem(pattern)
            if (re2Unsupported.test(pattern)) expect(problem).toBeDefined()
            if (problem !== undefined) {
              const { code, output } = await validateRegex(pattern)
              expect(code).toBe(1)
              expect(output).toContain(`vs.yaml:10: field 'spec.http[0].match[0].uri.regex': `)
              return
            }
            const matcher = compileStringMatch({ regex: pattern })
            for (const path of paths) {
              const started = performance.now()
              matcher.test(path)
              expect(performance.now() - started).toBeLessThan(MATCH_BOUND_MS)
            }
          },
        ),
        fuzzParameters('route-regex match', 300),
      )
    },
    fuzzTimeout(30_000),
  )
})

describe('route regex through a listener', () => {
  let proxy: ProxyProcess
  let app: Upstream
  let egress: number

  /** Patterns that backtrack exponentially in a JS RegExp (`(a+)+$` on 30 `a`s and a `!` takes minutes). */
  const bombs = ['/(a+)+$', '/(a|aa)+b', '/(a*)*b', '/(\\w+\\s?)*$']

  beforeAll(async () => {
    ;[egress] = await freePorts(1)
    app = await startUpstream('app')
    proxy = await startProxy({
      resources: {
        'sidecar.yaml': egressSidecar(egress),
        'services.yaml': yamlStream(loopbackService('app', 80, app.port)),
        'vs.yaml': virtualService({
          hosts: ['app'],
          http: [
            ...bombs.map((regex) => ({
              match: [{ uri: { regex } }],
              route: [{ destination: { host: 'app' } }],
            })),
            { directResponse: { status: 404, body: { string: 'no bomb matched' } } },
          ],
        }),
      },
    })
  })

  afterAll(async () => {
    await proxy?.stop()
    await app?.close()
  })

  it(
    'answers a long path against catastrophic patterns within a bound',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 20, max: 6000 }),
          fc.constantFrom('!', 'b', ''),
          async (n, tail) => {
            const path = `/${'a'.repeat(n)}${tail}`
            const started = performance.now()
            const reply = await sendRaw(
              egress,
              `GET ${path} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`,
              2_000,
            )
            expect(performance.now() - started).toBeLessThan(2_000)
            // `/a…a` matches the first and last pattern; `/a…ab` the second, third and last; `/a…a!` none.
            const matched = tail !== '!'
            expect(reply.slice(0, 12)).toBe(matched ? 'HTTP/1.1 200' : 'HTTP/1.1 404')
          },
        ),
        fuzzParameters('route-regex listener', 12),
      )
    },
    fuzzTimeout(30_000),
  )
})
