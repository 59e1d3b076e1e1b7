// Scenario: ServiceEntry resolution DNS (Envoy's STRICT_DNS) against a real DNS server on loopback: a host per address, re-resolved, each with its own outlier state.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { type DnsServer, startDnsServer } from './harness/dns-server.ts'
import { destinationRule, egressSidecar, serviceEntry, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

/** Answers `status` with `x-upstream: <name>`. */
const answer =
  (name: string, status: number): Handler =>
  (req, res) => {
    req.resume()
    res.writeHead(status, { 'x-upstream': name })
    res.end(name)
  }

/** A ServiceEntry resolved by DNS (no endpoints: the host itself is resolved, as Istio does). */
function dnsService(host: string, targetPort: number, resolution: 'DNS' | 'DNS_ROUND_ROBIN' = 'DNS'): string {
  const name = host.split('.')[0]
  return yamlStream(
    serviceEntry({
      name,
      hosts: [host],
      resolution,
      ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort }],
      endpoints: [],
      spec: { location: 'MESH_EXTERNAL' },
    }),
    destinationRule({
      host,
      name,
      trafficPolicy: {
        loadBalancer: { simple: 'ROUND_ROBIN' },
        outlierDetection: {
          consecutive5xxErrors: 1,
          interval: '1s',
          baseEjectionTime: '60s',
          maxEjectionPercent: 100,
        },
      },
    }),
  )
}

let dns: DnsServer
let proxy: ProxyProcess
let egress: number
const upstreams: Upstream[] = []

beforeAll(async () => {
  dns = await startDnsServer()
  const [spreadPort, ejectPort, logicalPort] = await freePorts(3)
  for (const [address, port, status] of [
    ['127.0.0.2', spreadPort, 200],
    ['127.0.0.3', spreadPort, 200],
    ['127.0.0.2', ejectPort, 503],
    ['127.0.0.3', ejectPort, 200],
    ['127.0.0.2', logicalPort, 200],
    ['127.0.0.3', logicalPort, 200],
  ] as const) {
    upstreams.push(await startUpstream(address, answer(address, status), port, address))
  }
  // TTL 1 s: the proxy asks again every second (Istio sets respect_dns_ttl).
  dns.set('spread.example.test', { addresses: ['127.0.0.2', '127.0.0.3'], ttl: 1 })
  dns.set('eject.example.test', { addresses: ['127.0.0.2', '127.0.0.3'], ttl: 1 })
  dns.set('logical.example.test', { addresses: ['127.0.0.2', '127.0.0.3'], ttl: 1 })
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': [
        dnsService('spread.example.test', spreadPort),
        dnsService('eject.example.test', ejectPort),
        dnsService('logical.example.test', logicalPort, 'DNS_ROUND_ROBIN'),
      ].join('---\n'),
    },
    extraBootstrap: `dns: {servers: ['${dns.address}']}\n`,
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all(upstreams.map((u) => u.close()))
  await dns?.close()
})

async function sendMany(host: string, n: number): Promise<Reply[]> {
  const replies: Reply[] = []
  for (let i = 0; i < n; i++) replies.push(await send(egress, host, '/'))
  return replies
}

const servedBy = (replies: Reply[]) => replies.map((r) => r.headers['x-upstream'])

/** `health_flags` of each host of `host`'s cluster, by `address:port`. */
async function healthFlags(host: string): Promise<Record<string, string>> {
  const text = await (await proxy.admin('/clusters')).text()
  const prefix = `outbound|80||${host}::`
  const flags: Record<string, string> = {}
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix) || !line.includes('::health_flags::')) continue
    flags[line.slice(prefix.length, line.indexOf('::', prefix.length))] = line.slice(
      line.lastIndexOf('::') + 2,
    )
  }
  return flags
}

describe('resolution: DNS (STRICT_DNS)', () => {
  it('makes a host of each resolved address and spreads requests over them; re-resolves on the TTL', async () => {
    const first = await sendMany('spread.example.test', 6)
    expect(first.map((r) => r.status)).toEqual(new Array(6).fill(200))
    expect(new Set(servedBy(first))).toEqual(new Set(['127.0.0.2', '127.0.0.3']))
    expect(Object.keys(await healthFlags('spread.example.test')).length).toBe(2)

    dns.set('spread.example.test', { addresses: ['127.0.0.3'], ttl: 1 })
    await eventually(async () => Object.keys(await healthFlags('spread.example.test')).length === 1, 5000)
    expect(servedBy(await sendMany('spread.example.test', 6))).toEqual(new Array(6).fill('127.0.0.3'))
  })

  it('ejects a failing resolved address on its own; the other keeps serving', async () => {
    await sendMany('eject.example.test', 4)
    const flags = await healthFlags('eject.example.test')
    const port = Object.keys(flags)[0].split(':')[1]
    expect(flags).toEqual({
      [`127.0.0.2:${port}`]: '/failed_outlier_check',
      [`127.0.0.3:${port}`]: 'healthy',
    })
    const after = await sendMany('eject.example.test', 4)
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect(new Set(servedBy(after))).toEqual(new Set(['127.0.0.3']))
  })
})

describe('resolution: DNS_ROUND_ROBIN (LOGICAL_DNS)', () => {
  it('is one host whose new connections go to the first address of the latest answer', async () => {
    const hosts = Object.keys(await healthFlags('logical.example.test'))
    expect(hosts).toEqual([expect.stringMatching(/^logical\.example\.test:\d+$/)])
    expect(new Set(servedBy(await sendMany('logical.example.test', 4)))).toEqual(new Set(['127.0.0.2']))
    dns.set('logical.example.test', { addresses: ['127.0.0.3', '127.0.0.2'], ttl: 1 })
    // Open connections stay where they are; new ones (after the pool's idle ones close) follow the answer.
    const port = Number(hosts[0].split(':')[1])
    const toFirst = upstreams.find((u) => u.name === '127.0.0.2' && u.port === port)
    await eventually(async () => {
      toFirst?.server.closeIdleConnections()
      return servedBy([await send(egress, 'logical.example.test', '/')])[0] === '127.0.0.3'
    }, 5000)
  })
})
