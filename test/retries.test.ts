// Scenario: VirtualService `retries` and Istio's default retry policy, against upstreams failing in scripted ways;
// the retry circuit breaker (connectionPool.http.maxRetries, retryBudget) refusing retries.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import { connect, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { closeSession, type H2Upstream, h2Request, h2Session, startH2Upstream } from './harness/h2.ts'
import { egressSidecar, staticService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let closedPort: number
let flaky: Upstream
let live: Upstream
let unavailable: Upstream
let grpcFlaky: H2Upstream

/** Connections left hanging by `/stall/…` answers. */
const stalledSockets: Socket[] = []

/** Times each path was seen, so every test uses its own path. */
const hits = new Map<string, number>()
/** The request bodies each try of a path brought, and whether it came chunked (no content-length). */
const received = new Map<string, { chunked: boolean; body: Buffer }[]>()

function record(path: string, chunked: boolean, body: Buffer): void {
  const list = received.get(path) ?? []
  list.push({ chunked, body })
  received.set(path, list)
}

/**
 * `/<status>/<n>/<id>`: answers `status` the first n times for this path, then 200 echoing the body and the
 * attempt count; `/hang/<n>/<id>` never answers the first n times; `/grpc/<n>/<id>` answers grpc-status 14;
 * `/early/<n>/<id>` answers 503 the first n times as soon as the request headers are in (body unread);
 * `/stall/<n>/<id>` answers 503 the first n times with a body that stops short of its content-length.
 */
function scripted(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  const count = (hits.get(url) ?? 0) + 1
  hits.set(url, count)
  const [, what, n] = url.split('/')
  if (what === 'early' && count <= Number(n)) {
    res.writeHead(503, { 'content-length': '5' })
    res.end('early')
    req.resume()
    return
  }
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    record(url, req.headers['content-length'] === undefined, Buffer.concat(chunks))
    if (count <= Number(n)) {
      if (what === 'hang') return
      if (what === 'stall') {
        // Promises 100 bytes, sends 10, then nothing: the body of a dropped response that never ends.
        res.writeHead(503, { 'content-length': '100' })
        res.write('0123456789')
        stalledSockets.push(req.socket)
        return
      }
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

/**
 * An h2c gRPC upstream: `/<n>/<id>` reads the whole request, then answers the first n tries
 * trailers-only with grpc-status 14 (unavailable), later ones with the request's bytes and status 0;
 * `/early/<n>/<id>` answers the first n tries so before reading any of the request.
 */
function grpcScripted(stream: ServerHttp2Stream, headers: Record<string, unknown>): void {
  const url = String(headers[':path'])
  const count = (hits.get(url) ?? 0) + 1
  hits.set(url, count)
  stream.on('error', () => {})
  const [, what, n] = url.split('/')
  if (what === 'early' && count <= Number(n)) {
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' },
      { endStream: true },
    )
    stream.resume()
    return
  }
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  stream.on('end', () => {
    const body = Buffer.concat(chunks)
    record(url, headers['content-length'] === undefined, body)
    if (count <= Number(what)) {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' },
        { endStream: true },
      )
      return
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
    stream.end(body)
  })
}

/** `total` bytes of a repeating pattern, in `size`-byte chunks yielded a tick apart (sent chunked). */
async function* slowChunks(total: number, size: number): AsyncGenerator<Buffer> {
  for (let sent = 0; sent < total; sent += size) {
    const n = Math.min(size, total - sent)
    const chunk = Buffer.alloc(n)
    for (let i = 0; i < n; i++) chunk[i] = (sent + i) % 251
    await tick()
    yield chunk
  }
}

/** Like slowChunks, but `gapMs` apart: the body is still streaming when a first try is answered early. */
async function* timedChunks(total: number, size: number, gapMs: number): AsyncGenerator<Buffer> {
  for await (const chunk of slowChunks(total, size)) {
    await new Promise((r) => setTimeout(r, gapMs))
    yield chunk
  }
}

const pattern = (total: number): Buffer => {
  const out = Buffer.alloc(total)
  for (let i = 0; i < total; i++) out[i] = i % 251
  return out
}

/** A gRPC message frame: not compressed, 4-byte length, payload. */
const grpcFrame = (payload: Buffer): Buffer => {
  const head = Buffer.alloc(5)
  head.writeUInt32BE(payload.length, 1)
  return Buffer.concat([head, payload])
}

const service = (name: string, endpoints: string): string => staticService(name, [endpoints])

/**
 * How the always-503 upstream answers one group of requests (`/<group>/<id>`): first tries are held
 * until `burst` of them arrived and then all answered at once (or, without `burst`, each after
 * `firstMs`); retried tries (x-envoy-attempt-count > 1) are answered after `retryMs`. It records
 * arrivals per request and the most retried tries it had in flight at once.
 */
class RetryProbe {
  readonly arrivals = new Map<string, number>()
  maxRetriesInFlight = 0
  #retriesInFlight = 0
  #held: ServerResponse[] = []
  readonly #burst: number
  readonly #firstMs: number
  readonly #retryMs: number

  constructor(opts: { burst?: number; firstMs?: number; retryMs: number }) {
    this.#burst = opts.burst ?? 0
    this.#firstMs = opts.firstMs ?? 0
    this.#retryMs = opts.retryMs
  }

  handle(id: string, attempt: number, res: ServerResponse): void {
    this.arrivals.set(id, (this.arrivals.get(id) ?? 0) + 1)
    if (attempt > 1) {
      this.#retriesInFlight++
      this.maxRetriesInFlight = Math.max(this.maxRetriesInFlight, this.#retriesInFlight)
      setTimeout(() => {
        this.#retriesInFlight--
        unavailableReply(res)
      }, this.#retryMs)
      return
    }
    if (this.#burst === 0) {
      setTimeout(() => unavailableReply(res), this.#firstMs)
      return
    }
    this.#held.push(res)
    // Every first try fails in the same tick, so their retry decisions are made together.
    if (this.#held.length === this.#burst) for (const held of this.#held.splice(0)) unavailableReply(held)
  }

  /** Requests that were tried once only (their retry was refused) and those that were retried. */
  outcome(): { once: number; retried: number } {
    const counts = [...this.arrivals.values()]
    return { once: counts.filter((n) => n === 1).length, retried: counts.filter((n) => n > 1).length }
  }
}

function unavailableReply(res: ServerResponse): void {
  res.writeHead(503, { 'content-length': '11' })
  res.end('unavailable')
}

const probes = {
  'max-retries': new RetryProbe({ burst: 6, retryMs: 100 }),
  budget: new RetryProbe({ burst: 6, retryMs: 100 }),
  staggered: new RetryProbe({ firstMs: 300, retryMs: 300 }),
}

function probed(req: IncomingMessage, res: ServerResponse): void {
  req.resume()
  const [, group, id] = (req.url ?? '/').split('/')
  const attempt = Number(req.headers['x-envoy-attempt-count'] ?? '1')
  probes[group as keyof typeof probes].handle(id, attempt, res)
}

/** A DestinationRule for `host` with the given trafficPolicy (YAML, indented 4). */
const rule = (host: string, policy: string): string => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host}, namespace: default}
spec:
  host: ${host}
  trafficPolicy:
${policy}
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
  unavailable = await startUpstream('unavailable', probed)
  grpcFlaky = await startH2Upstream('grpc-flaky', grpcScripted)
  ;[egress, closedPort] = await freePorts(2)
  const flakyEp = `{address: 127.0.0.1, ports: {http: ${flaky.port}}}`
  const closedEp = `{address: 127.0.0.1, ports: {http: ${closedPort}}}`
  const liveEp = `{address: 127.0.0.1, ports: {http: ${live.port}}}`
  const unavailableEp = `{address: 127.0.0.1, ports: {http: ${unavailable.port}}}`
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
        service('cb-max-retries', unavailableEp),
        service('cb-budget', unavailableEp),
        service('cb-staggered', unavailableEp),
        service('pair-flaky', `${closedEp}, ${flakyEp}`),
        service('grpc-flaky', `{address: 127.0.0.1, ports: {http: ${grpcFlaky.port}}}`).replace(
          'protocol: HTTP',
          'protocol: GRPC',
        ),
      ].join('---\n'),
      'destination-rules.yaml': [
        rule('cb-max-retries', '    connectionPool: {http: {maxRetries: 1}}'),
        rule('cb-budget', '    retryBudget: {percent: 10, minRetryConcurrency: 1}'),
        rule('cb-staggered', '    connectionPool: {http: {maxRetries: 1}}'),
        // Round robin: of any two picks one is the closed endpoint, so some request needs its retry.
        rule('pair-flaky', '    loadBalancer: {simple: ROUND_ROBIN}'),
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
        route('cb-max-retries', '      retries: {attempts: 3, retryOn: 5xx}'),
        route('cb-budget', '      retries: {attempts: 3, retryOn: 5xx}'),
        route('cb-staggered', '      retries: {attempts: 3, retryOn: 5xx}'),
        route('pair-flaky', '      retries: {attempts: 2, retryOn: connect-failure}'),
        route('grpc-flaky', '      retries: {attempts: 2, retryOn: unavailable}'),
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
  await unavailable?.close()
  await grpcFlaky?.close()
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

  it('reads a short dropped 503 to its end, so its HTTP/1.1 connection serves the next request', async () => {
    let opened = 0
    const onConnection = (): void => {
      opened++
    }
    flaky.server.on('connection', onConnection)
    try {
      for (let i = 0; i < 8; i++) {
        const reply = await send(egress, 'five', `/503/1/keep-${i}`)
        expect(reply.status).toBe(200)
        expect(JSON.parse(reply.body).attempt).toBe('2')
      }
    } finally {
      flaky.server.off('connection', onConnection)
    }
    // Cut with its connection (as Envoy's reset does), each dropped 503 would cost a new one: 8 or more.
    expect(opened).toBeLessThanOrEqual(1)
  })

  it('closes the connection of a dropped 503 whose body stops arriving, and the retry still answers', async () => {
    const reply = await send(egress, 'five', '/stall/1/a')
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body).attempt).toBe('2')
    const socket = stalledSockets.at(-1) as Socket
    await eventually(async () => socket.destroyed, 3_000)
    expect(socket.destroyed).toBe(true)
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

  it('perTryTimeout starts once the request body is in, as Envoy arms it: a slow upload is not cut', async () => {
    // 8 chunks 100 ms apart: the upload takes about 800 ms against a 300 ms perTryTimeout.
    const reply = await sendChunked('pertry', '/200/0/slow-upload', timedChunks(8 * 1024, 1024, 100))
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body).attempt).toBe('1')
    expect(hits.get('/200/0/slow-upload')).toBe(1)
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

  it("Istio's default policy retries connect failures, a 503 and gRPC unavailable, twice (pilot's retry.DefaultPolicy)", async () => {
    expect((await send(egress, 'dead-default', '/dd')).status).toBe(503)
    expect(await waitForSummary('dead-default', '/dd')).toMatch(/flags=UF,URX .* attempts=3 /)
    expect((await send(egress, 'defaults', '/503/1/g')).status).toBe(200)
    expect(hits.get('/503/1/g')).toBe(2)
    expect((await send(egress, 'defaults', '/503/3/g')).status).toBe(503)
    expect(hits.get('/503/3/g')).toBe(3)
    expect((await send(egress, 'defaults', '/500/1/g')).status).toBe(500)
    expect(hits.get('/500/1/g')).toBe(1)
    expect((await send(egress, 'defaults', '/grpc/1/g')).status).toBe(200)
    expect(hits.get('/grpc/1/g')).toBe(2)
  })
})

/** A cluster-level counter from /clusters (`<cluster>::<stat>::<value>`). */
async function clusterStat(cluster: string, stat: string): Promise<number> {
  const text = await (await proxy.admin('/clusters')).text()
  const prefix = `${cluster}::${stat}::`
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  return line === undefined ? Number.NaN : Number(line.slice(prefix.length))
}

/** Sends `count` requests for `host` to `/<group>/<i>`, `gapMs` apart, and waits for every reply. */
async function concurrent(host: string, group: string, count: number, gapMs = 0): Promise<Reply[]> {
  const replies: Promise<Reply>[] = []
  for (let i = 0; i < count; i++) {
    if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs))
    replies.push(send(egress, host, `/${group}/${i}`))
  }
  return Promise.all(replies)
}

/** A POST whose body streams chunked (undici sends an async iterable without content-length). */
async function sendChunked(host: string, path: string, body: AsyncIterable<Buffer>): Promise<Reply> {
  const res = await request(`http://127.0.0.1:${egress}${path}`, {
    method: 'POST',
    headers: { host },
    body: Readable.from(body, { objectMode: false }),
  })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

describe('retries of streamed request bodies (Envoy replays a buffered copy up to 64 KiB)', () => {
  it('replays a chunked HTTP/1.1 body that the failed try had read whole', async () => {
    const total = 40 * 1024
    const reply = await sendChunked('five', '/503/1/chunked', slowChunks(total, 4 * 1024))
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body).attempt).toBe('2')
    const tries = received.get('/503/1/chunked') ?? []
    expect(tries).toHaveLength(2)
    expect(tries[0].chunked).toBe(true)
    expect(tries[0].body.equals(pattern(total))).toBe(true)
    expect(tries[1].body.equals(pattern(total))).toBe(true)
  })

  it('does not retry a chunked body that outgrew the bound: the 503 goes down, one try only', async () => {
    const total = 100 * 1024
    const reply = await sendChunked('five', '/503/1/chunked-big', slowChunks(total, 8 * 1024))
    expect(reply.status).toBe(503)
    expect(reply.body).toBe('fail')
    expect(hits.get('/503/1/chunked-big')).toBe(1)
    // The one try still got the whole body, streamed past the bound.
    expect(received.get('/503/1/chunked-big')?.[0].body.equals(pattern(total))).toBe(true)
  })

  it('a try answered while the body still streams is retried with the part read so far, then the rest', async () => {
    const total = 30 * 1024
    const reply = await sendChunked('five', '/early/1/h1', timedChunks(total, 2 * 1024, 10))
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body).attempt).toBe('2')
    expect(hits.get('/early/1/h1')).toBe(2)
    const tries = received.get('/early/1/h1') ?? []
    expect(tries).toHaveLength(1)
    expect(tries[0].body.equals(pattern(total))).toBe(true)
  })

  it('a client gone mid-body ends the request without a retry; the proxy keeps serving', async () => {
    const socket = connect(egress, '127.0.0.1')
    await new Promise((r) => socket.once('connect', r))
    socket.write(
      'POST /hang/9/gone HTTP/1.1\r\nhost: five\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n',
    )
    await eventually(async () => hits.get('/hang/9/gone') === 1)
    socket.write('5\r\nworld\r\n')
    await new Promise((r) => setTimeout(r, 50))
    socket.destroy()
    expect(await waitForSummary('five', '/hang/9/gone')).toContain(' attempts=1 ')
    await new Promise((r) => setTimeout(r, 100))
    expect(hits.get('/hang/9/gone')).toBe(1)
    expect((await send(egress, 'five', '/503/0/after-gone')).status).toBe(200)
  })

  it('retries a connect failure with a body over the bound (nothing of it was read yet)', async () => {
    const total = 100 * 1024
    const attempts = new Set<string>()
    for (let i = 0; i < 4; i++) {
      const path = `/200/0/pair-${i}`
      const reply =
        i % 2 === 0
          ? await sendChunked('pair-flaky', path, slowChunks(total, 16 * 1024))
          : await send(egress, 'pair-flaky', path, { method: 'POST', body: pattern(total) })
      expect(reply.status).toBe(200)
      attempts.add(JSON.parse(reply.body).attempt)
      expect(received.get(path)?.[0].body.equals(pattern(total))).toBe(true)
    }
    // Round robin over a closed and a live endpoint: some requests needed the retry.
    expect(attempts.has('2')).toBe(true)
  })

  it('replays an HTTP/2 request body on the retry', async () => {
    const session = await h2Session(egress)
    try {
      const total = 30 * 1024
      const reply = await h2Request(
        session,
        { ':method': 'POST', ':path': '/503/1/h2', ':authority': 'five' },
        slowChunks(total, 3 * 1024),
      )
      expect(reply.status).toBe(200)
      expect(JSON.parse(reply.body.toString()).attempt).toBe('2')
      const tries = received.get('/503/1/h2') ?? []
      expect(tries).toHaveLength(2)
      expect(tries[0].body.equals(pattern(total))).toBe(true)
      expect(tries[1].body.equals(pattern(total))).toBe(true)
    } finally {
      await closeSession(session)
    }
  })

  it('retries a client-streaming gRPC call (retryOn unavailable) over h2 with the same messages', async () => {
    const session = await h2Session(egress)
    try {
      const messages = [grpcFrame(pattern(1000)), grpcFrame(pattern(2000)), grpcFrame(pattern(3000))]
      async function* frames(): AsyncGenerator<Buffer> {
        for (const frame of messages) {
          await tick()
          yield frame
        }
      }
      const reply = await h2Request(
        session,
        {
          ':method': 'POST',
          ':path': '/1/client-stream',
          ':authority': 'grpc-flaky',
          'content-type': 'application/grpc',
          te: 'trailers',
        },
        frames(),
      )
      expect(reply.status).toBe(200)
      expect(reply.trailers?.['grpc-status']).toBe('0')
      const sent = Buffer.concat(messages)
      expect(reply.body.equals(sent)).toBe(true)
      const tries = received.get('/1/client-stream') ?? []
      expect(tries).toHaveLength(2)
      expect(tries[0].chunked).toBe(true)
      expect(tries[0].body.equals(sent)).toBe(true)
      expect(tries[1].body.equals(sent)).toBe(true)
    } finally {
      await closeSession(session)
    }
  })

  it('retries a gRPC stream answered unavailable before its messages were read, replaying them', async () => {
    const session = await h2Session(egress)
    try {
      const total = 24 * 1024
      const reply = await h2Request(
        session,
        {
          ':method': 'POST',
          ':path': '/early/1/stream',
          ':authority': 'grpc-flaky',
          'content-type': 'application/grpc',
          te: 'trailers',
        },
        timedChunks(total, 2 * 1024, 10),
      )
      expect(reply.status).toBe(200)
      expect(reply.trailers?.['grpc-status']).toBe('0')
      expect(reply.body.equals(pattern(total))).toBe(true)
      expect(hits.get('/early/1/stream')).toBe(2)
    } finally {
      await closeSession(session)
    }
  })
})

describe('the retry circuit breaker', () => {
  it('connectionPool.http.maxRetries 1: one retry at a time, the other requests are answered untried', async () => {
    const probe = probes['max-retries']
    const replies = await concurrent('cb-max-retries', 'max-retries', 6)
    for (const reply of replies) expect(reply.status).toBe(503)
    expect(probe.maxRetriesInFlight).toBe(1)
    const { once, retried } = probe.outcome()
    expect(once + retried).toBe(6)
    expect(once).toBeGreaterThanOrEqual(1)
    expect(retried).toBeGreaterThanOrEqual(1)
    // The request that got the slot used all of its 3 retries, one after another.
    expect(Math.max(...probe.arrivals.values())).toBe(4)
    const cluster = 'outbound|80||cb-max-retries.default.svc.cluster.local'
    expect(await clusterStat(cluster, 'upstream_rq_retry_overflow')).toBe(once)
    await eventually(async () => (await waitForSummary('cb-max-retries', '/max-retries/0')) !== undefined)
  })

  it('retryBudget {percent: 10, minRetryConcurrency: 1}: likewise one retry at a time', async () => {
    const probe = probes.budget
    const replies = await concurrent('cb-budget', 'budget', 6)
    for (const reply of replies) expect(reply.status).toBe(503)
    expect(probe.maxRetriesInFlight).toBe(1)
    const { once, retried } = probe.outcome()
    expect(once + retried).toBe(6)
    expect(once).toBeGreaterThanOrEqual(1)
    expect(retried).toBeGreaterThanOrEqual(1)
    const cluster = 'outbound|80||cb-budget.default.svc.cluster.local'
    expect(await clusterStat(cluster, 'upstream_rq_retry_overflow')).toBe(once)
  })

  // KNOWN BUG (src/upstream/upstream-request.ts, not ours to edit): the retry slot is given back when
  // the backoff ends, before the retried try is sent, so retries of requests that fail one after
  // another overlap at the upstream. Envoy (router/retry_state_impl.cc) holds the slot until the
  // retried try's outcome is known (the next shouldRetry) or the request ends. Turn `it.fails` into
  // `it` once upstream-request.ts holds the slot through the retried try.
  it('maxRetries 1 holds its slot while the retried try is in flight (requests failing in turn)', async () => {
    const probe = probes.staggered
    const replies = await concurrent('cb-staggered', 'staggered', 4, 150)
    for (const reply of replies) expect(reply.status).toBe(503)
    expect(probe.maxRetriesInFlight).toBe(1)
    expect(probe.outcome()).toEqual({ once: 3, retried: 1 })
  })
})
