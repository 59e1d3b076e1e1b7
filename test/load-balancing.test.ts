// Scenario: DestinationRule loadBalancer policies (least request, random, consistent hash) over real upstreams.

import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { serviceWithPolicy, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
const upstreams: Upstream[] = []
/** Requests the `hang` upstream holds until the end of the file. */
const held: ServerResponse[] = []
const unfinished: Promise<Reply>[] = []

/** A ServiceEntry `name` on port 80 (and 81 with `twoPorts`) whose endpoints are the given upstreams, and its DestinationRule. */
function service(name: string, members: Upstream[], trafficPolicy: string, twoPorts = false): string {
  const ports = twoPorts ? '[{number: 80, name: http}, {number: 81, name: alt}]' : undefined
  const alt = (u: Upstream) => (twoPorts ? `, alt: ${u.port}` : '')
  const endpoints = members.map((u) => `{address: 127.0.0.1, ports: {http: ${u.port}${alt(u)}}}`)
  return serviceWithPolicy(name, endpoints, trafficPolicy, ports)
}

beforeAll(async () => {
  const hang = await startUpstream('hang', (req, res) => {
    req.resume()
    held.push(res)
  })
  const echo = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)))
  upstreams.push(hang, ...echo)
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: egress, protocol: 'HTTP' }] }),
      'services.yaml': [
        service('least', [hang, ...echo], '    loadBalancer: {simple: LEAST_REQUEST}\n'),
        service('random', echo.slice(0, 2), '    loadBalancer: {simple: RANDOM}\n'),
        service('by-header', echo, '    loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n'),
        service(
          'by-cookie',
          echo,
          '    loadBalancer: {consistentHash: {httpCookie: {name: user, path: /, ttl: 60s}}}\n',
        ),
        service('by-source', echo, '    loadBalancer: {consistentHash: {useSourceIp: true, maglev: {}}}\n'),
        service(
          'by-query',
          echo,
          '    loadBalancer: {consistentHash: {httpQueryParameterName: u, maglev: {tableSize: 251}}}\n',
        ),
        service(
          'ported',
          echo,
          `    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
    portLevelSettings:
    - port: {number: 81}
      loadBalancer: {simple: ROUND_ROBIN}
`,
          true,
        ),
      ].join('---\n'),
    },
  })
})

afterAll(async () => {
  for (const res of held.splice(0)) res.end()
  await Promise.allSettled(unfinished)
  await proxy?.stop()
  await Promise.all(upstreams.map((u) => u.close()))
})

const upstreamOf = (r: Reply) => r.headers['x-upstream']

async function sendMany(
  host: string,
  n: number,
  headers: Record<string, string> = {},
  path = '/',
): Promise<Reply[]> {
  const replies: Reply[] = []
  for (let i = 0; i < n; i++) replies.push(await send(egress, host, path, { headers }))
  return replies
}

/** Resolves when `check` holds, polling every 2 ms. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 2))
}

describe('load balancing', () => {
  it('LEAST_REQUEST keeps away from an endpoint with requests in flight', async () => {
    // One of four endpoints never answers; each request there stays in flight. Round robin would
    // send it 25 of 100; two random choices pick it only when both land on it (~1/16).
    let hung = 0
    for (let i = 0; i < 100; i++) {
      const before = held.length
      const reply = send(egress, 'least', '/')
      const outcome = await Promise.race([
        reply.then(() => 'answered'),
        until(() => held.length > before).then(() => 'held'),
      ])
      if (outcome === 'held') {
        hung++
        unfinished.push(reply)
      } else {
        expect((await reply).status).toBe(200)
      }
    }
    expect(hung).toBeGreaterThan(0)
    expect(hung).toBeLessThan(20)
  })

  it('RANDOM reaches every endpoint, in no fixed order', async () => {
    const order = (await sendMany('random', 60)).map(upstreamOf)
    expect(new Set(order)).toEqual(new Set(['a', 'b']))
    const alternating = order.every((u, i) => i === 0 || u !== order[i - 1])
    expect(alternating).toBe(false)
  })

  it('consistent hash on a header keeps each user on one endpoint and spreads users', async () => {
    const seen = new Set<unknown>()
    for (let user = 0; user < 30; user++) {
      const replies = await sendMany('by-header', user < 5 ? 6 : 1, { 'x-user': `user-${user}` })
      const targets = new Set(replies.map(upstreamOf))
      expect(targets.size).toBe(1)
      seen.add([...targets][0])
    }
    expect(seen.size).toBeGreaterThan(1)
  })

  it('consistent hash on a cookie sets the cookie when absent, then sticks to its endpoint', async () => {
    const first = await send(egress, 'by-cookie', '/')
    const setCookie = String(first.headers['set-cookie'])
    expect(setCookie).toMatch(/^user="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/)
    const cookie = setCookie.slice(0, setCookie.indexOf(';'))
    const replies = await sendMany('by-cookie', 8, { cookie: `theme=dark; ${cookie}` })
    expect(new Set(replies.map(upstreamOf))).toEqual(new Set([upstreamOf(first)]))
    expect(replies.map((r) => r.headers['set-cookie'])).toEqual(new Array(8).fill(undefined))
  })

  it('consistent hash on the source IP (Maglev) sends one client to one endpoint', async () => {
    expect(new Set((await sendMany('by-source', 10)).map(upstreamOf)).size).toBe(1)
  })

  it('consistent hash on a query parameter (Maglev) keeps each value on one endpoint', async () => {
    const seen = new Set<unknown>()
    for (let user = 0; user < 20; user++) {
      const targets = new Set((await sendMany('by-query', 3, {}, `/items?u=${user}&x=1`)).map(upstreamOf))
      expect(targets.size).toBe(1)
      seen.add([...targets][0])
    }
    expect(seen.size).toBeGreaterThan(1)
  })

  it('portLevelSettings give one port its own policy', async () => {
    const user = { 'x-user': 'alice' }
    expect(new Set((await sendMany('ported:80', 6, user)).map(upstreamOf)).size).toBe(1)
    expect(new Set((await sendMany('ported:81', 6, user)).map(upstreamOf)).size).toBe(3)
  })
})
