// Unit tests for DNS clusters (Envoy's STRICT_DNS and LOGICAL_DNS) against a real DNS server on loopback.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request as undiciRequest } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type DnsServer, startDnsServer } from '../../test/harness/dns-server.ts'
import { defaultDnsSettings } from '../bootstrap/dns-defaults.ts'
import { staticEndpoint } from '../config/compile/clusters.ts'
import { defaultClusterPolicy } from '../config/compile/traffic-policy.ts'
import type { ClusterDiscovery, ClusterModel, OutlierDetectionModel } from '../config/model.ts'
import { Cluster } from './cluster.ts'
import { DnsResolver } from './dns-resolver.ts'
import { request } from './lb/test-support.ts'

const od: OutlierDetectionModel = {
  consecutive5xxErrors: 1,
  consecutiveGatewayErrors: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 60_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 100,
  minHealthPercent: 0,
  httpErrorCodes: [],
}

let dns: DnsServer
let resolver: DnsResolver
const clusters: Cluster[] = []

beforeAll(async () => {
  dns = await startDnsServer()
  // TTL 0 in these answers: each name is resolved again every refreshRate.
  resolver = new DnsResolver({ ...defaultDnsSettings, servers: [dns.address], refreshRate: '50ms' })
})
afterAll(() => dns.close())
afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.close()))
})

function model(discovery: ClusterDiscovery, addresses: string[], port = 8080): ClusterModel {
  return {
    name: `outbound|80||${addresses[0]}`,
    direction: 'outbound',
    host: addresses[0],
    port: 80,
    subset: '',
    protocol: 'HTTP',
    discovery,
    endpoints: addresses.map((a) => staticEndpoint(a, port)),
    connectTimeoutMs: 1000,
    policy: { ...defaultClusterPolicy, loadBalancer: { kind: 'ROUND_ROBIN' }, outlierDetection: od },
  }
}

async function warmed(m: ClusterModel): Promise<Cluster> {
  const c = new Cluster(m, resolver)
  clusters.push(c)
  await c.warmed
  return c
}

const req = request()
const hostPorts = (c: Cluster) => c.endpoints.map((e) => e.hostPort)
const picked = (c: Cluster, n: number) =>
  new Set(Array.from({ length: n }, () => c.pick(req)?.hostPort ?? 'none'))

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('STRICT_DNS cluster', () => {
  it('makes one host per resolved address and balances over them', async () => {
    dns.set('two.strict.test', { addresses: ['127.0.0.2', '127.0.0.3'] })
    const c = await warmed(model('STRICT_DNS', ['two.strict.test']))
    expect(hostPorts(c)).toEqual(['127.0.0.2:8080', '127.0.0.3:8080'])
    expect(picked(c, 4)).toEqual(new Set(['127.0.0.2:8080', '127.0.0.3:8080']))
  })

  it('on a new answer keeps the hosts that stay (with their outlier state), drops the gone, adds the new', async () => {
    dns.set('moving.strict.test', { addresses: ['127.0.0.2', '127.0.0.3'] })
    const c = await warmed(model('STRICT_DNS', ['moving.strict.test']))
    const [kept, gone] = c.endpoints
    kept.reportStatus(503)
    expect(kept.ejected).toBe(true)
    expect(c.outlierDetector?.ejectedCount).toBe(1)
    dns.set('moving.strict.test', { addresses: ['127.0.0.4', '127.0.0.2'] })
    await until(() => hostPorts(c).includes('127.0.0.4:8080'))
    expect(hostPorts(c)).toEqual(['127.0.0.4:8080', '127.0.0.2:8080'])
    expect(c.endpoints[1]).toBe(kept)
    expect(c.endpoints).not.toContain(gone)
    expect(kept.ejected).toBe(true)
    expect(c.endpoints[0].ejected).toBe(false)
    expect(picked(c, 4)).toEqual(new Set(['127.0.0.4:8080']))
  })

  it('a failed resolution keeps the hosts; an empty answer removes them (no healthy upstream)', async () => {
    dns.set('flaky.strict.test', { addresses: ['127.0.0.2'] })
    const c = await warmed(model('STRICT_DNS', ['flaky.strict.test']))
    const [target] = c.dnsTargets
    dns.set('flaky.strict.test', 'SERVFAIL')
    const failures = target.failures
    await until(() => target.failures > failures + 1)
    expect(hostPorts(c)).toEqual(['127.0.0.2:8080'])
    dns.set('flaky.strict.test', { addresses: [] })
    await until(() => c.endpoints.length === 0)
    expect(c.pick(req)).toBeUndefined()
  })

  it('resolves each name once; IP endpoints beside names stay as they are', async () => {
    dns.set('a.strict.test', { addresses: ['127.0.0.5', '127.0.0.6'] })
    const c = await warmed(model('STRICT_DNS', ['a.strict.test', '127.0.0.9', 'a.strict.test']))
    expect([...c.dnsTargets].map((t) => t.name)).toEqual(['a.strict.test'])
    expect(hostPorts(c)).toEqual([
      '127.0.0.5:8080',
      '127.0.0.6:8080',
      '127.0.0.9:8080',
      '127.0.0.5:8080',
      '127.0.0.6:8080',
    ])
  })

  it('a reload that drops the name stops resolving it', async () => {
    dns.set('dropped.strict.test', { addresses: ['127.0.0.2'] })
    const c = await warmed(model('STRICT_DNS', ['dropped.strict.test']))
    c.apply(model('STRICT_DNS', ['127.0.0.7']))
    const asked = () => dns.queries.get('dropped.strict.test A') ?? 0
    const before = asked()
    await new Promise((r) => setTimeout(r, 200))
    expect(asked()).toBeLessThanOrEqual(before + 1) // at most the one already in flight
    expect(hostPorts(c)).toEqual(['127.0.0.7:8080'])
  })
})

describe('LOGICAL_DNS cluster', () => {
  const servers: Server[] = []
  afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))))

  /** An HTTP server on `address` answering its own address; `port` 0 picks one. */
  async function serve(address: string, port: number): Promise<number> {
    const server = createServer((_req, res) => res.end(address))
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(port, address, resolve))
    return (server.address() as AddressInfo).port
  }

  const get = async (c: Cluster): Promise<string> => {
    const endpoint = c.endpoints[0]
    // undici's request() through the endpoint's Pool (the proxy loads only undici's dispatchers: undici-parts.ts).
    const { body } = await undiciRequest(`http://${endpoint.hostPort}/`, {
      dispatcher: endpoint.http1,
      reset: true,
    })
    return body.text()
  }

  it('is one host named by the DNS name; new connections go to its latest first address', async () => {
    const port = await serve('127.0.0.2', 0)
    await serve('127.0.0.3', port)
    dns.set('logical.test', { addresses: ['127.0.0.2', '127.0.0.3'] })
    const c = await warmed(model('LOGICAL_DNS', ['logical.test'], port))
    expect(hostPorts(c)).toEqual([`logical.test:${port}`])
    const host = c.endpoints[0]
    expect(await get(c)).toBe('127.0.0.2')
    dns.set('logical.test', { addresses: ['127.0.0.3'] })
    const [target] = c.dnsTargets
    await until(() => target.addresses[0] === '127.0.0.3')
    expect(await get(c)).toBe('127.0.0.3')
    expect(c.endpoints[0]).toBe(host)
    // An empty answer keeps the last address (Envoy's logical_dns_cluster.cc updates on non-empty answers).
    dns.set('logical.test', { addresses: [] })
    await until(() => target.addresses.length === 0)
    expect(await get(c)).toBe('127.0.0.3')
  })
})
