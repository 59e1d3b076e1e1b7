// Scenario: DestinationRule outlierDetection ejects failing endpoints of real upstreams, then lets them back.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { routeTo, serviceWithPolicy, sidecar, virtualService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

/** Starts a 200 response, then drops the connection halfway through the body. */
const cutOff: Handler = (req, res) => {
  req.resume()
  res.writeHead(200, { 'content-length': '100' })
  res.write('half')
  setTimeout(() => res.socket?.destroy(), 20)
}

const status =
  (code: number): Handler =>
  (req, res) => {
    req.resume()
    res.writeHead(code, { 'x-upstream-status': String(code) })
    res.end(`status ${code}`)
  }

/** A ServiceEntry `name` whose endpoints are the given loopback ports, and its DestinationRule. */
function service(name: string, ports: number[], outlierDetection: string): string {
  const endpoints = ports.map((p) => `{address: 127.0.0.1, ports: {http: ${p}}}`)
  return serviceWithPolicy(
    name,
    endpoints,
    `    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: ${outlierDetection}`,
  )
}

let proxy: ProxyProcess
let egress: number
let closedPort: number
const upstreams: Upstream[] = []
const port = (name: string): number => {
  const u = upstreams.find((x) => x.name === name)
  if (u === undefined) throw new Error(name)
  return u.port
}

beforeAll(async () => {
  for (const [name, code] of [
    // A 500, not a 503: Istio's default retry policy retries a 503 on another endpoint.
    ['bad', 500],
    ['good', 200],
    ['bad2', 503],
    ['e500', 500],
    ['e502', 502],
    ['good2', 200],
    ['bad3', 503],
    ['bad4', 503],
    ['bad5', 500],
    ['good3', 200],
  ] as const) {
    upstreams.push(await startUpstream(name, status(code)))
  }
  upstreams.push(await startUpstream('cutoff', cutOff), await startUpstream('good4', status(200)))
  ;[egress, closedPort] = await freePorts(2)
  const fast = 'interval: 0.2s, baseEjectionTime: 1s'
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: egress, protocol: 'HTTP' }] }),
      'services.yaml': [
        service(
          'flaky',
          [port('bad'), port('good')],
          `{consecutive5xxErrors: 3, ${fast}, maxEjectionPercent: 100}`,
        ),
        service(
          'down',
          [port('bad'), port('bad2')],
          `{consecutive5xxErrors: 1, ${fast}, maxEjectionPercent: 100}`,
        ),
        service(
          'gateway',
          [port('e500'), port('e502')],
          `{consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, ${fast}, maxEjectionPercent: 100}`,
        ),
        service(
          'refused',
          [closedPort, port('good2')],
          `{splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, ${fast}, maxEjectionPercent: 100}`,
        ),
        // Without this, Istio's default retry policy would retry each connect failure on the good endpoint.
        virtualService({
          hosts: ['refused'],
          http: [{ retries: { attempts: 0 }, route: routeTo('refused') }],
        }),
        service('capped', [port('bad3'), port('bad4')], `{consecutive5xxErrors: 1, ${fast}}`),
        service(
          'midbody',
          [port('cutoff'), port('good4')],
          `{consecutive5xxErrors: 1, ${fast}, maxEjectionPercent: 100}`,
        ),
        service(
          'panic',
          [port('bad5'), port('good3')],
          `{consecutive5xxErrors: 1, ${fast}, maxEjectionPercent: 100, minHealthPercent: 60}`,
        ),
      ].join('---\n'),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all(upstreams.map((u) => u.close()))
})

async function sendMany(host: string, n: number): Promise<Reply[]> {
  const replies: Reply[] = []
  for (let i = 0; i < n; i++) replies.push(await send(egress, host, '/'))
  return replies
}

/** `health_flags` of each endpoint of `host`'s cluster, by endpoint port. */
async function healthFlags(host: string): Promise<Record<number, string>> {
  const text = await (await proxy.admin('/clusters')).text()
  const prefix = `outbound|80||${host}.default.svc.cluster.local::127.0.0.1:`
  const flags: Record<number, string> = {}
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix) || !line.includes('::health_flags::')) continue
    flags[Number(line.slice(prefix.length, line.indexOf('::', prefix.length)))] = line.slice(
      line.lastIndexOf('::') + 2,
    )
  }
  return flags
}

const codes = (replies: Reply[]) => replies.map((r) => r.status)

describe('outlier detection', () => {
  it('ejects an endpoint after consecutive 5xx, then returns it after baseEjectionTime', async () => {
    const first = await sendMany('flaky', 6) // round robin: three reach the failing endpoint
    expect(codes(first).filter((c) => c === 500)).toHaveLength(3)
    expect(await healthFlags('flaky')).toEqual({
      [port('bad')]: '/failed_outlier_check',
      [port('good')]: 'healthy',
    })
    expect(codes(await sendMany('flaky', 10))).toEqual(new Array(10).fill(200))
    const json = (await (await proxy.admin('/clusters?format=json')).json()) as {
      cluster_statuses: {
        name: string
        host_statuses: { address: string; health_status: Record<string, unknown> }[]
      }[]
    }
    const flaky = json.cluster_statuses.find((c) => c.name === 'outbound|80||flaky.default.svc.cluster.local')
    const bad = flaky?.host_statuses.find((h) => h.address === `127.0.0.1:${port('bad')}`)
    expect(bad?.health_status.failed_outlier_check).toBe(true)
    // After 1 s (checked every 0.2 s) it is back and takes traffic again.
    await eventually(async () => (await healthFlags('flaky'))[port('bad')] === 'healthy', 3000)
    expect(codes(await sendMany('flaky', 2))).toContain(500)
  })

  it('with every endpoint ejected, answers 503 no healthy upstream', async () => {
    await sendMany('down', 2)
    const reply = await send(egress, 'down', '/')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe('no healthy upstream')
    expect(reply.headers['x-upstream-status']).toBeUndefined()
  })

  it('consecutiveGatewayErrors counts 502/503/504 only', async () => {
    await sendMany('gateway', 8)
    expect(await healthFlags('gateway')).toEqual({
      [port('e500')]: 'healthy',
      [port('e502')]: '/failed_outlier_check',
    })
    expect(codes(await sendMany('gateway', 4))).toEqual([500, 500, 500, 500])
  })

  it('with splitExternalLocalOriginErrors, connect failures eject at consecutiveLocalOriginFailures', async () => {
    const first = await sendMany('refused', 4)
    expect(codes(first).filter((c) => c === 503)).toHaveLength(2)
    expect(first.find((r) => r.status === 503)?.body).toContain('reset reason: connection failure')
    expect((await healthFlags('refused'))[closedPort]).toBe('/failed_outlier_check')
    expect(codes(await sendMany('refused', 6))).toEqual(new Array(6).fill(200))
  })

  it('counts a connection lost after the response started (Envoy reports every upstream reset)', async () => {
    const replies = await Promise.allSettled([send(egress, 'midbody', '/'), send(egress, 'midbody', '/')])
    expect(replies.some((r) => r.status === 'rejected')).toBe(true)
    expect((await healthFlags('midbody'))[port('cutoff')]).toBe('/failed_outlier_check')
    expect(codes(await sendMany('midbody', 4))).toEqual([200, 200, 200, 200])
  })

  // Envoy's ejectHost (envoy#27909) refuses an ejection that would take the ejected share past
  // max_ejection_percent; Istio leaves always_eject_one_host unset. 1 of 2 would be 50% > 10%.
  it("at Istio's default maxEjectionPercent (10%), a two-endpoint service ejects neither", async () => {
    const replies = await sendMany('capped', 8)
    expect(codes(replies)).toEqual(new Array(8).fill(503))
    expect(replies.map((r) => r.body)).not.toContain('no healthy upstream')
    expect(await healthFlags('capped')).toEqual({ [port('bad3')]: 'healthy', [port('bad4')]: 'healthy' })
  })

  it('below minHealthPercent healthy endpoints, balances over all of them (panic)', async () => {
    await sendMany('panic', 2)
    expect((await healthFlags('panic'))[port('bad5')]).toBe('/failed_outlier_check')
    // 1 of 2 healthy is 50% < 60%: the ejected endpoint still gets its share.
    expect(codes(await sendMany('panic', 6)).filter((c) => c === 500)).toHaveLength(3)
  })
})
