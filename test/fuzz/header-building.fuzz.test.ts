// Fuzz target: the upstream request headers (router/upstream-headers.ts) and downstream response headers (http/downstream-headers.ts) built from arbitrary client, app and VirtualService header maps, through a real proxy.

import { connect } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatMessage } from '../../src/config/messages.ts'
import { parseResources } from '../../src/config/parse-resources.ts'
import { isHopByHop } from '../../src/protocol/hop-by-hop.ts'
import { egressSidecar, loopbackService, virtualService, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'
import { fuzzParameters, fuzzTimeout } from './fuzz-budget.ts'
import { fieldOf, readResponses } from './http1-responses.ts'

/** Names that a proxy treats specially, and ordinary ones. */
const fieldName = fc.oneof(
  fc.constantFrom(
    'connection',
    'keep-alive',
    'proxy-connection',
    'upgrade',
    'te',
    'trailer',
    'proxy-authenticate',
    'proxy-authorization',
    'x-forwarded-proto',
    'x-forwarded-for',
    'x-forwarded-client-cert',
    'x-request-id',
    'x-envoy-upstream-service-time',
    'x-envoy-original-path',
    'x-drop',
    'server',
    'via',
    'set-cookie',
  ),
  fc.string({ unit: fc.constantFrom(...'abcxyz-_.!#~09'), minLength: 1, maxLength: 12 }).map((s) => `x-${s}`),
)

/** Values node lets a client or the app send (HTAB, visible ASCII, obs-text). */
const wireValue = fc.oneof(
  fc.string({
    unit: fc.constantFrom('a', ' ', '\t', ',', ';', '=', '"', '\u0080', '\u00ff', 'x-drop', 'close'),
    maxLength: 20,
  }),
  fc.constantFrom(
    'close',
    'keep-alive',
    'x-drop',
    'x-drop, close',
    'trailers',
    'gzip',
    'upgrade',
    'https',
    '1.2.3.4',
  ),
)

/** Values a VirtualService may hold: any text, line breaks and control characters included. */
const configValue = fc.oneof(
  wireValue,
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({
    unit: fc.constantFrom('a', '\n', '\r', '\u0000', '\u0001', '\u007f', '\u00e9', '\u4e2d', '\ud83d\ude00'),
    maxLength: 6,
  }),
)

const edits = fc.record(
  {
    set: fc.dictionary(fieldName, configValue, { maxKeys: 3 }),
    add: fc.dictionary(fieldName, configValue, { maxKeys: 3 }),
    remove: fc.array(fieldName, { maxLength: 3 }),
  },
  { requiredKeys: [] },
)

const scenario = fc.record({
  clientFields: fc.array(fc.tuple(fieldName, wireValue), { maxLength: 8 }),
  appFields: fc.array(fc.tuple(fieldName, wireValue), { maxLength: 8 }),
  requestEdits: edits,
  responseEdits: edits,
})

let proxy: ProxyProcess
let app: Upstream
let egress: number
/** Per marker: the fields the app answers with, and the raw fields it received. */
const appAnswers = new Map<string, readonly (readonly [string, string])[]>()
const appReceived = new Map<string, string[]>()

beforeAll(async () => {
  ;[egress] = await freePorts(1)
  app = await startUpstream('app', (req, res) => {
    const marker = String(req.headers['x-fuzz-marker'])
    appReceived.set(marker, req.rawHeaders)
    req.resume()
    req.on('end', () => {
      const fields: string[] = []
      for (const [name, value] of appAnswers.get(marker) ?? []) fields.push(name, value)
      res.writeHead(200, fields)
      res.end('app')
    })
  })
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

async function reloads(): Promise<{ succeeded: number; failed: number }> {
  return (
    (await (await proxy.admin('/config_dump')).json()) as { reloads: { succeeded: number; failed: number } }
  ).reloads
}

/** One request on a raw connection; the whole reply once the server has sent a response and gone quiet. */
function exchange(bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(egress, '127.0.0.1')
    let wire = ''
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(wire)
    }
    const timer = setTimeout(finish, 4_000)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      wire += chunk
      if (readResponses(wire, () => false, false).responses.length > 0) finish()
    })
    socket.on('close', finish)
    socket.on('error', () => {})
    socket.write(Buffer.from(bytes, 'latin1'))
  })
}

/** A header value as a peer reads it off the wire: text beyond latin1 as its UTF-8 bytes, without surrounding whitespace. */
function onTheWire(value: string): string {
  // A parser drops the optional whitespace around a field value (RFC 9110 §5.5).
  return Buffer.from(value, 'utf8')
    .toString('latin1')
    .replace(/^[ \t]+|[ \t]+$/g, '')
}

let run = 0

describe('header building fuzz', () => {
  it(
    'builds headers from any client, app and route header maps: no hop-by-hop, no line breaks, edits and x-forwarded-* kept, always an answer',
    async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async ({ clientFields, appFields, requestEdits, responseEdits }) => {
          const marker = `h${process.pid}-${run++}`
          const yaml = virtualService({
            hosts: ['app'],
            http: [
              {
                headers: { request: requestEdits, response: responseEdits },
                route: [{ destination: { host: 'app' } }],
              },
            ],
          })
          // The proxy validates as `outrigger validate` does: a refused value is an error at its line, and
          // the proxy keeps its last good config; an accepted one must be sendable.
          const messages = parseResources(yaml, 'vs.yaml', 'default').messages.filter(
            (m) => m.severity === 'error',
          )
          for (const message of messages) expect(formatMessage(message)).toMatch(/^vs\.yaml:\d+: /)
          if (messages.length > 0) return
          const before = await reloads()
          await proxy.writeResource('vs.yaml', `# ${marker}\n${yaml}`)
          await eventually(async () => {
            const now = await reloads()
            return now.succeeded + now.failed > before.succeeded + before.failed
          }, 10_000)
          expect((await reloads()).failed).toBe(before.failed)

          appAnswers.set(marker, appFields)
          const head = [`GET /h HTTP/1.1`, 'host: app', `x-fuzz-marker: ${marker}`]
          for (const [name, value] of clientFields) head.push(`${name}: ${value}`)
          const wire = await exchange(`${head.join('\r\n')}\r\n\r\n`)
          expect(proxy.child.exitCode, proxy.stderr().slice(-2000)).toBeNull()
          const { responses, problem } = readResponses(wire, () => false, true)
          expect(problem, wire.slice(0, 400)).toBeUndefined()
          expect(responses.length).toBe(1)
          const response = responses[0]
          expect(response.status, response.body).toBe(200)

          // Upstream request: hop-by-hop fields and those the client's Connection names are gone (unless a
          // route edit adds them back, after the removal, as Envoy's order is), x-forwarded-proto and
          // x-request-id are present (the client's kept), and no value holds a line break.
          const received = appReceived.get(marker) ?? []
          const addedUp = new Set([
            ...Object.keys(requestEdits.set ?? {}),
            ...Object.keys(requestEdits.add ?? {}),
          ])
          const clientConnection = clientFields
            .filter(([name]) => name === 'connection')
            .flatMap(([, value]) => value.split(',').map((t) => t.trim().toLowerCase()))
          for (let i = 0; i < received.length; i += 2) {
            const name = received[i].toLowerCase()
            expect(received[i + 1]).not.toMatch(/[\0\r\n]/)
            if (addedUp.has(name)) continue
            // The upstream hop's own connection management (undici's keep-alive) is not a forwarded field.
            if (name === 'connection') expect(['keep-alive', 'close']).toContain(received[i + 1])
            else if (name === 'te') expect(received[i + 1]).toBe('trailers')
            else expect(isHopByHop(name), `hop-by-hop ${name} reached the app`).toBe(false)
            if (name !== 'x-fuzz-marker' && name !== 'host')
              expect(clientConnection.includes(name), `${name} was named by Connection`).toBe(false)
          }
          const receivedNames = received.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
          const removedUp = new Set((requestEdits.remove ?? []).map((n) => n.toLowerCase()))
          if (!removedUp.has('x-forwarded-proto')) expect(receivedNames).toContain('x-forwarded-proto')
          if (!removedUp.has('x-request-id')) expect(receivedNames).toContain('x-request-id')
          for (const [name, value] of Object.entries(requestEdits.set ?? {}))
            if (!isHopByHop(name)) expect(received).toContain(onTheWire(value))

          // Downstream response: the app's hop-by-hop fields are gone, the service time is the proxy's own,
          // and every `set` edit is there with its value as sent on the wire.
          const addedDown = new Set([
            ...Object.keys(responseEdits.set ?? {}),
            ...Object.keys(responseEdits.add ?? {}),
          ])
          for (const [name, value] of response.headers) {
            expect(value).not.toMatch(/[\0\r\n]/)
            // This hop's own connection management and framing (node's), not forwarded fields.
            if (addedDown.has(name) || name === 'connection' || name === 'keep-alive') continue
            if (name === 'transfer-encoding' && value === 'chunked') continue
            expect(isHopByHop(name), `hop-by-hop ${name} reached the client`).toBe(false)
          }
          if (
            !addedDown.has('x-envoy-upstream-service-time') &&
            !(responseEdits.remove ?? []).includes('x-envoy-upstream-service-time')
          )
            expect(fieldOf(response, 'x-envoy-upstream-service-time')).toMatch(/^\d+$/)
          for (const [name, value] of Object.entries(responseEdits.set ?? {}))
            if (!isHopByHop(name) && name !== 'server')
              expect(
                response.headers.some(([n, v]) => n === name && v === onTheWire(value)),
                `set ${name}`,
              ).toBe(true)
          appAnswers.delete(marker)
          appReceived.delete(marker)
        }),
        fuzzParameters('header-building', 25),
      )
    },
    fuzzTimeout(60_000),
  )
})
