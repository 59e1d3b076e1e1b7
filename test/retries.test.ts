// Scenario: VirtualService `retries` and Istio's default retry policy, against upstreams failing in scripted ways.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { egressSidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let closedPort: number
let flaky: Upstream
let live: Upstream

/** Times each path was seen, so every test uses its own path. */
const hits = new Map<string, number>()

/**
 * `/<status>/<n>/<id>`: answers `status` the first n times for this path, then 200 echoing the body and the
 * attempt count; `/hang/<n>/<id>` never answers the first n times; `/grpc/<n>/<id>` answers grpc-status 14.
 */
function scripted(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  const count = (hits.get(url) ?? 0) + 1
  hits.set(url, count)
  const [, what, n] = url.split('/')
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    if (count <= Number(n)) {
      if (what === 'hang') return
      if (what === 'grpc') {
        res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': '14', 'content-length': '0' })
        res.end()
        return
      }
      res.writeHead(Number(what), { 'content-length': '4' })
      res.end('fail')
      return
    }
    const body = JSON.stringify({
      attempt: req.headers['x-envoy-attempt-count'] ?? null,
      body: Buffer.concat(chunks).toString(),
    })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
}

const service = (name: string, endpoints: string): string => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [${endpoints}]
`

const route = (name: string, extra: string): string => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}]
  http:
    - route: [{destination: {host: ${name}}}]
${extra}
`

beforeAll(async () => {
  flaky = await startUpstream('flaky', scripted)
  live = await startUpstream('live')
  ;[egress, closedPort] = await freePorts(2)
  const flakyEp = `{address: 127.0.0.1, ports: {http: ${flaky.port}}}`
  const closedEp = `{address: 127.0.0.1, ports: {http: ${closedPort}}}`
  const liveEp = `{address: 127.0.0.1, ports: {http: ${live.port}}}`
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': [
        service('five', flakyEp),
        service('codes', flakyEp),
        service('pertry', flakyEp),
        service('noretry', flakyEp),
        service('defaults', flakyEp),
        service('pair', `${closedEp}, ${liveEp}`),
        service('dead', closedEp),
        service('dead-default', closedEp),
      ].join('---\n'),
      'virtual-services.yaml': [
        route('five', '      retries: {attempts: 3, retryOn: 5xx}'),
        route('codes', '      retries: {attempts: 2, retryOn: "retriable-4xx,418,unavailable"}'),
        route(
          'pertry',
          '      timeout: 5s\n      retries: {attempts: 2, perTryTimeout: 300ms, retryOn: reset}',
        ),
        route('noretry', '      retries: {attempts: 0}'),
        route('defaults', ''),
        route('pair', '      retries: {attempts: 3, retryOn: connect-failure}'),
        route('dead', '      retries: {attempts: 2, retryOn: connect-failure}'),
        route('dead-default', ''),
      ].join('---\n'),
    },
  })
  const res = await proxy.admin('/logging?level=debug', { method: 'POST' })
  await res.arrayBuffer()
})

afterAll(async () => {
  await proxy?.stop()
  await flaky?.close()
  await live?.close()
})

async function waitForSummary(host: string, path: string): Promise<string> {
  const find = () =>
    proxy
      .stderr()
      .split('\n')
      .find((line) => line.includes(` request `) && line.includes(` ${host}${path} `))
  for (let i = 0; i < 100 && find() === undefined; i++) await new Promise((r) => setTimeout(r, 20))
  return find() as string
}

describe('retries', () => {
  it('retries 5xx until the upstream succeeds, counting attempts in x-envoy-attempt-count', async () => {
    const reply = await send(egress, 'five', '/503/2/a', { headers: { 'x-envoy-attempt-count': '7' } })
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body)).toEqual({ attempt: '3', body: '' })
    expect(hits.get('/503/2/a')).toBe(3)
    expect(await waitForSummary('five', '/503/2/a')).toContain('flags=- ')
  })

  it('passes the last response through with URX when attempts are exhausted', async () => {
    const reply = await send(egress, 'five', '/500/9/b')
    expect(reply.status).toBe(500)
    expect(reply.body).toBe('fail')
    expect(hits.get('/500/9/b')).toBe(4)
    expect(await waitForSummary('five', '/500/9/b')).toContain('flags=URX ')
  })

  it('retries retriable-4xx (409), bare status codes and gRPC unavailable; not other codes', async () => {
    expect((await send(egress, 'codes', '/409/1/c')).status).toBe(200)
    expect((await send(egress, 'codes', '/418/2/c')).status).toBe(200)
    expect((await send(egress, 'codes', '/grpc/1/c')).status).toBe(200)
    expect(hits.get('/grpc/1/c')).toBe(2)
    expect((await send(egress, 'codes', '/500/1/c')).status).toBe(500)
    expect(hits.get('/500/1/c')).toBe(1)
  })

  it('replays a small request body on each try', async () => {
    const reply = await send(egress, 'five', '/503/1/body', { method: 'POST', body: 'hello body' })
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body)).toEqual({ attempt: '2', body: 'hello body' })
  })

  it('does not retry a request whose body is over the replay bound (64 KiB)', async () => {
    const big = 'x'.repeat(100 * 1024)
    const reply = await send(egress, 'five', '/503/1/big', { method: 'POST', body: big })
    expect(reply.status).toBe(503)
    expect(hits.get('/503/1/big')).toBe(1)
  })

  it('perTryTimeout abandons a hung try and retries it within the route timeout', async () => {
    const start = performance.now()
    const reply = await send(egress, 'pertry', '/hang/1/d')
    const ms = performance.now() - start
    expect(reply.status).toBe(200)
    expect(hits.get('/hang/1/d')).toBe(2)
    expect(ms).toBeGreaterThanOrEqual(280)
    expect(ms).toBeLessThan(4_500)
  })

  it('a try timing out every time ends in 504 UT with URX', async () => {
    const reply = await send(egress, 'pertry', '/hang/9/e')
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('upstream request timeout')
    expect(hits.get('/hang/9/e')).toBe(3)
    expect(await waitForSummary('pertry', '/hang/9/e')).toContain('flags=UT,URX ')
  })

  it("/config_dump shows each route's compiled retry policy", async () => {
    // Compact the pretty-printed dump so the assertions can read it as one line.
    const dump = JSON.stringify(await (await proxy.admin('/config_dump')).json())
    expect(dump).toContain('"numRetries":3,"perTryTimeoutMs":0,"on":["5xx"]')
    expect(dump).toContain(
      '"on":["retriable-4xx","retriable-status-codes","unavailable"],"statusCodes":[418]',
    )
  })

  it('attempts: 0 turns retrying off', async () => {
    expect((await send(egress, 'noretry', '/503/1/f')).status).toBe(503)
    expect(hits.get('/503/1/f')).toBe(1)
  })

  it('retries a connect failure on the other endpoint', async () => {
    for (let i = 0; i < 6; i++) {
      const reply = await send(egress, 'pair', `/pair/${i}`)
      expect(reply.status).toBe(200)
      expect(reply.headers['x-upstream']).toBe('live')
    }
  })

  it('ends in 503 UF with URX when every try fails to connect', async () => {
    const reply = await send(egress, 'dead', '/dead')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    )
    expect(await waitForSummary('dead', '/dead')).toMatch(/flags=UF,URX .* attempts=3 /)
  })

  it("Istio's default policy retries connect failures twice, but not a 503 from the app", async () => {
    expect((await send(egress, 'dead-default', '/dd')).status).toBe(503)
    expect(await waitForSummary('dead-default', '/dd')).toMatch(/flags=UF,URX .* attempts=3 /)
    expect((await send(egress, 'defaults', '/503/1/g')).status).toBe(503)
    expect(hits.get('/503/1/g')).toBe(1)
    expect((await send(egress, 'defaults', '/grpc/1/g')).status).toBe(200)
    expect(hits.get('/grpc/1/g')).toBe(2)
  })
})
