// Scenario: consistentHash keys land on the endpoint Envoy's ring hash and Maglev pick, through a real proxy process.

import { get } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { referenceXxh64 } from '../src/upstream/lb/test-support.ts'
import { send } from './harness/client.ts'
import { egressSidecar, serviceWithPolicy } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/**
 * The expectations below come from a model written here with BigInt, separately from src/: the
 * ring and the table as Envoy's ring_hash_lb.cc and maglev_lb.cc build them for equal weights, over
 * the xxHash64 reference of test-support (itself checked against Envoy's hash_test.cc). The model is
 * first checked against the vectors published in Envoy's ring_hash_lb_test.cc and maglev_lb_test.cc.
 */
const xx = (text: string, seed = 0n) => referenceXxh64(new Uint8Array(Buffer.from(text, 'latin1')), seed)

/** Equal weights: each host gets ceil(minimumRingSize / n) points xxHash64("<host>_<i>"); a hash takes the first point at or after it. */
function ringModel(hostKeys: string[], minimumRingSize: number): (hash: bigint) => number {
  const perHost = Math.ceil(minimumRingSize / hostKeys.length)
  const points = hostKeys
    .flatMap((key, host) => Array.from({ length: perHost }, (_, i) => ({ at: xx(`${key}_${i}`), host })))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
  return (hash) => (points.find((p) => p.at >= hash) ?? points[0]).host
}

/** Equal weights: hosts sorted by key take turns claiming the next free slot of (offset + skip × j) mod size. */
function maglevModel(hostKeys: string[], size: number): (hash: bigint) => number {
  const big = BigInt(size)
  const hosts = hostKeys
    .map((key, host) => ({
      key,
      host,
      offset: xx(key) % big,
      skip: (xx(key, 1n) % (big - 1n)) + 1n,
      next: 0n,
    }))
    .sort((a, b) => (a.key < b.key ? -1 : 1))
  const table = new Array<number>(size).fill(-1)
  for (let filled = 0; filled < size; ) {
    for (const h of hosts) {
      if (filled === size) break
      let slot = Number((h.offset + h.skip * h.next) % big)
      while (table[slot] !== -1) slot = Number((h.offset + h.skip * ++h.next) % big)
      table[slot] = h.host
      h.next++
      filled++
    }
  }
  return (hash) => table[Number(hash % big)]
}

describe("the model matches Envoy's published vectors", () => {
  const six = [90, 91, 92, 93, 94, 95].map((port) => `127.0.0.1:${port}`)

  it('ring_hash_lb_test.cc Basic (minimum ring size 12)', () => {
    const ring = ringModel(six, 12)
    expect([0n, (1n << 64n) - 1n, 3551244743356806947n, 3551244743356806948n].map(ring)).toEqual([4, 4, 5, 3])
  })

  it('maglev_lb_test.cc Basic (table size 7)', () => {
    const table = maglevModel(six, 7)
    expect([0n, 1n, 2n, 3n, 4n, 5n, 6n].map(table)).toEqual([2, 4, 0, 1, 5, 0, 3])
  })
})

let proxy: ProxyProcess
let egress: number
const upstreams: Upstream[] = []
let hostKeys: string[] = []

beforeAll(async () => {
  upstreams.push(...(await Promise.all(['a', 'b', 'c', 'd'].map((name) => startUpstream(name)))))
  hostKeys = upstreams.map((u) => `127.0.0.1:${u.port}`)
  const endpoints = upstreams.map((u) => `{address: 127.0.0.1, ports: {http: ${u.port}}}`)
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': [
        serviceWithPolicy(
          'ring',
          endpoints,
          '    loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n',
        ),
        serviceWithPolicy(
          'ring-cookie',
          endpoints,
          '    loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 0s}, ringHash: {minimumRingSize: 64}}}\n',
        ),
        serviceWithPolicy(
          'maglev',
          endpoints,
          '    loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {}}}\n',
        ),
        serviceWithPolicy(
          'maglev-query',
          endpoints,
          '    loadBalancer: {consistentHash: {httpQueryParameterName: u, maglev: {tableSize: 251}}}\n',
        ),
        serviceWithPolicy(
          'maglev-source',
          endpoints,
          '    loadBalancer: {consistentHash: {useSourceIp: true, maglev: {}}}\n',
        ),
      ].join('---\n'),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all(upstreams.map((u) => u.close()))
})

const users = Array.from({ length: 24 }, (_, i) => `user-${i * 7919}`)

async function upstreamFor(
  host: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const reply = await send(egress, host, path, { headers })
  expect(reply.status).toBe(200)
  return reply.headers['x-upstream']
}

/** The upstream that answers a GET sent from the local address `client` (node:http, to bind the source). */
function upstreamFrom(client: string, host: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = get(
      { host: '127.0.0.1', port: egress, path: '/', localAddress: client, headers: { host } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.headers['x-upstream']))
      },
    )
    req.on('error', reject)
  })
}

describe('consistentHash through the proxy lands where Envoy would send it', () => {
  it('ringHash on a header (Istio default minimumRingSize 1024)', async () => {
    const ring = ringModel(hostKeys, 1024)
    for (const user of users) {
      const expected = upstreams[ring(xx(user))].name
      expect(await upstreamFor('ring', '/', { 'x-user': user })).toBe(expected)
    }
  })

  it('ringHash on a cookie (minimumRingSize 64), the value hashed without its quotes', async () => {
    const ring = ringModel(hostKeys, 64)
    for (const user of users.slice(0, 12)) {
      const expected = upstreams[ring(xx(user))].name
      expect(await upstreamFor('ring-cookie', '/', { cookie: `theme=dark; session="${user}"` })).toBe(
        expected,
      )
    }
  })

  it('maglev on a header (Envoy default table size 65537)', async () => {
    const table = maglevModel(hostKeys, 65537)
    for (const user of users) {
      const expected = upstreams[table(xx(user))].name
      expect(await upstreamFor('maglev', '/', { 'x-user': user })).toBe(expected)
    }
  })

  it('maglev on a query parameter (table size 251), the value as sent, not percent-decoded', async () => {
    const table = maglevModel(hostKeys, 251)
    for (const value of ['a%20b', 'a+b', 'plain', '%E2%9C%93', '']) {
      const expected = upstreams[table(xx(value))].name
      expect(await upstreamFor('maglev-query', `/items?x=1&u=${value}&u=second`)).toBe(expected)
    }
  })

  it('maglev on the source IP: clients bound to 127.0.0.1 to 127.0.0.8', async () => {
    const table = maglevModel(hostKeys, 65537)
    for (let last = 1; last <= 8; last++) {
      const client = `127.0.0.${last}`
      expect(await upstreamFrom(client, 'maglev-source')).toBe(upstreams[table(xx(client))].name)
    }
  })
})
