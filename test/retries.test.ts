// Scenario: VirtualService `retries` and Istio's default retry policy, against upstreams failing in scripted ways;
// the retry circuit breaker (connectionPool.http.maxRetries, retryBudget) refusing retries.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { egressSidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let closedPort: number
let flaky: Upstream
let live: Upstream
let unavailable: Upstream

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
      ].join('---\n'),
      'destination-rules.yaml': [
        rule('cb-max-retries', '    connectionPool: {http: {maxRetries: 1}}'),
        rule('cb-budget', '    retryBudget: {percent: 10, minRetryConcurrency: 1}'),
        rule('cb-staggered', '    connectionPool: {http: {maxRetries: 1}}'),
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
