// Scenario: VirtualService `fault` (Istio's fault-injection task): delays and aborts for one user, by percentage.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let ratings: Upstream

const service = (name: string): string => istio.loopbackService(name, 80, ratings.port)

/** A VirtualService for `host` whose route injects `fault`; with `endUser`, only for that user's requests. */
function withFault(host: string, fault: istio.Fields, endUser?: string): string {
  const faulted = { fault, route: istio.routeTo(host) }
  if (endUser === undefined) return istio.virtualService({ hosts: [host], http: [faulted] })
  const match = [{ headers: { 'end-user': { exact: endUser } } }]
  return istio.virtualService({
    hosts: [host],
    http: [{ match, ...faulted }, { route: istio.routeTo(host) }],
  })
}

beforeAll(async () => {
  ratings = await startUpstream('ratings')
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.egressSidecar(egress),
      'services.yaml': ['ratings', 'details', 'half', 'grpc', 'both', 'never', 'legacy']
        .map(service)
        .join('---\n'),
      'virtual-services.yaml': istio.yamlStream(
        withFault('ratings', { delay: { percentage: { value: 100.0 }, fixedDelay: '600ms' } }, 'jason'),
        withFault('details', { abort: { percentage: { value: 100.0 }, httpStatus: 500 } }, 'jason'),
        withFault('half', { abort: { percentage: { value: 50 }, httpStatus: 503 } }),
        withFault('grpc', { abort: { percentage: { value: 100 }, grpcStatus: 'UNAVAILABLE' } }),
        withFault('both', {
          delay: { percentage: { value: 100 }, fixedDelay: '300ms' },
          abort: { percentage: { value: 100 }, httpStatus: 418 },
        }),
        withFault('never', { abort: { httpStatus: 500 } }),
        withFault('legacy', { delay: { percent: 100, fixedDelay: '300ms' } }),
      ),
    },
  })
  const res = await proxy.admin('/logging?level=debug', { method: 'POST' })
  await res.arrayBuffer()
})

afterAll(async () => {
  await proxy?.stop()
  await ratings?.close()
})

/** The debug summary line the proxy wrote for a request with this unique path. */
function summary(path: string): string {
  return proxy
    .stderr()
    .split('\n')
    .find((line) => line.includes(` request GET `) && line.includes(`${path} `)) as string
}

async function timed(host: string, path: string, headers: Record<string, string> = {}) {
  const start = performance.now()
  const reply = await send(egress, host, path, { headers })
  return { reply, ms: performance.now() - start }
}

async function waitForSummary(path: string): Promise<string> {
  for (let i = 0; i < 100 && summary(path) === undefined; i++) await new Promise((r) => setTimeout(r, 20))
  return summary(path)
}

describe('fault injection', () => {
  it('delays requests from jason by the fixed delay, and only his (DI)', async () => {
    const { reply, ms } = await timed('ratings', '/ratings/jason', { 'end-user': 'jason' })
    expect(reply.status).toBe(200)
    expect(ms).toBeGreaterThanOrEqual(580)
    expect(await waitForSummary('/ratings/jason')).toContain('flags=DI ')

    const other = await timed('ratings', '/ratings/other', { 'end-user': 'mary' })
    expect(other.reply.status).toBe(200)
    expect(await waitForSummary('/ratings/other')).toContain('flags=- ')
  })

  it("aborts jason's requests with 500 `fault filter abort` (FI) before they reach the upstream", async () => {
    const before = ratings.seen.length
    const reply = await send(egress, 'details', '/details/jason', { headers: { 'end-user': 'jason' } })
    expect(reply.status).toBe(500)
    expect(reply.body).toBe('fault filter abort')
    expect(reply.headers['content-type']).toBe('text/plain')
    expect(ratings.seen.length).toBe(before)
    expect(await waitForSummary('/details/jason')).toMatch(/ 500 flags=FI details=fault_filter_abort /)

    const other = await send(egress, 'details', '/details/mary')
    expect(other.status).toBe(200)
  })

  it('aborts a percentage of requests within statistical bounds', async () => {
    const n = 400
    let aborted = 0
    for (let i = 0; i < n; i++) {
      const reply = await send(egress, 'half', `/half/${i}`)
      if (reply.status === 503) {
        expect(reply.body).toBe('fault filter abort')
        aborted++
      } else {
        expect(reply.status).toBe(200)
      }
    }
    // Binomial(400, 0.5): sd 10; 120..280 is 8 standard deviations either way.
    expect(aborted).toBeGreaterThan(120)
    expect(aborted).toBeLessThan(280)
  })

  it('a missing percentage aborts nothing (Envoy reads an unset percentage as 0%)', async () => {
    for (let i = 0; i < 20; i++) expect((await send(egress, 'never', '/')).status).toBe(200)
  })

  it('answers gRPC requests aborted with grpcStatus as HTTP 200 with grpc-status', async () => {
    const reply = await send(egress, 'grpc', '/pkg.Svc/Method', {
      method: 'POST',
      headers: { 'content-type': 'application/grpc' },
      body: Buffer.alloc(5),
    })
    expect(reply.status).toBe(200)
    expect(reply.headers['grpc-status']).toBe('14')
    expect(reply.headers['grpc-message']).toBe('fault filter abort')
    expect(reply.headers['content-type']).toBe('application/grpc')
    const plain = await send(egress, 'grpc', '/plain')
    expect(plain.status).toBe(200)
    expect(plain.body).toBe('fault filter abort')
  })

  it('delays, then aborts (DI,FI)', async () => {
    const { reply, ms } = await timed('both', '/both')
    expect(reply.status).toBe(418)
    expect(reply.body).toBe('fault filter abort')
    expect(ms).toBeGreaterThanOrEqual(280)
    expect(await waitForSummary('/both')).toContain('flags=DI,FI ')
  })

  it('honours the deprecated integer percent', async () => {
    const { reply, ms } = await timed('legacy', '/legacy')
    expect(reply.status).toBe(200)
    expect(ms).toBeGreaterThanOrEqual(280)
  })
})
