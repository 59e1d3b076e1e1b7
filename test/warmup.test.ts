// Scenario: DestinationRule warmup (Envoy slow start): an endpoint added by a reload ramps up its share of traffic.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { serviceWithPolicy, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
const upstreams: Record<string, Upstream> = {}

/** ServiceEntry `name` with the given upstreams and a round-robin DestinationRule with `extra` settings. */
function service(name: string, members: string[], extra: string): string {
  const endpoints = members.map((m) => `{address: 127.0.0.1, ports: {http: ${upstreams[m].port}}}`)
  return serviceWithPolicy(name, endpoints, `    loadBalancer: {simple: ROUND_ROBIN${extra}}`)
}

const WINDOW_MS = 3000
const warm = `, warmup: {duration: ${WINDOW_MS}ms, minimumPercent: 10}`

function services(members: string[]): string {
  return [
    service(
      'warm',
      members.map((m) => `warm-${m}`),
      warm,
    ),
    service(
      'cold',
      members.map((m) => `cold-${m}`),
      '',
    ),
  ].join('---\n')
}

beforeAll(async () => {
  for (const prefix of ['warm', 'cold'])
    for (const m of ['a', 'b', 'c']) upstreams[`${prefix}-${m}`] = await startUpstream(m)
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: egress, protocol: 'HTTP' }] }),
      'services.yaml': services(['a', 'b']),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all(Object.values(upstreams).map((u) => u.close()))
})

async function spread(host: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 }
  for (let i = 0; i < n; i++) {
    const reply = await send(egress, host)
    counts[String(reply.headers['x-upstream'])]++
  }
  return counts
}

describe('warmup', () => {
  it('endpoints present from the start are not warmed up', async () => {
    expect(await spread('warm', 40)).toEqual({ a: 20, b: 20, c: 0 })
  })

  it('an endpoint added by a reload starts at the minimum weight and reaches its full share after the window', async () => {
    // The proxy adds the endpoint (and starts its ramp) somewhere between the write and /clusters showing it,
    // which on a loaded machine is hundreds of milliseconds apart: the bounds below take the side of each that
    // holds whenever it was.
    const written = performance.now()
    await proxy.writeResource('services.yaml', services(['a', 'b', 'c']))
    const port = upstreams['warm-c'].port
    await eventually(async () => (await (await proxy.admin('/clusters')).text()).includes(`:${port}::`))
    const seen = performance.now()

    // Just added: weight 0.1 (rising with time) against 1 and 1, so about 5% of requests. The bound
    // allows for the ramp reached by the time the requests ended, however slow the machine is.
    const early = await spread('warm', 100)
    const factor = Math.max(0.1, (performance.now() - written) / WINDOW_MS)
    expect(early.c).toBeGreaterThanOrEqual(1)
    expect(early.c).toBeLessThanOrEqual(Math.ceil((100 * factor) / (2 + factor)) + 2)
    expect(early.c).toBeLessThan(33)
    // Without warmup the new endpoint gets its third at once.
    expect((await spread('cold', 60)).c).toBe(20)

    await new Promise((r) => setTimeout(r, Math.max(0, seen + WINDOW_MS + 100 - performance.now())))
    const late = await spread('warm', 90)
    expect(late).toEqual({ a: 30, b: 30, c: 30 })
  })
})
