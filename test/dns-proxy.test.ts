// Scenario: the DNS proxy (Istio's agent on 15053) in a real proxy process: ServiceEntry names answered over UDP and TCP, others forwarded, reloads, truncation and garbage.

import { createSocket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import { connect } from 'node:net'
import * as dnsPacket from 'dns-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DnsServer, startDnsServer } from './harness/dns-server.ts'
import { serviceEntry, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'

const manyAddresses = Array.from({ length: 60 }, (_, i) => `10.50.0.${i + 1}`)

function services(reviewsAddress: string): string {
  return yamlStream(
    serviceEntry({
      name: 'reviews',
      hosts: ['reviews.default.svc.cluster.local'],
      ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
      spec: { addresses: [reviewsAddress, 'fd00::10'] },
    }),
    // No addresses, resolution DNS: the proxy allocates one (auto allocation is on with the DNS proxy).
    serviceEntry({
      name: 'api',
      hosts: ['api.example.com'],
      resolution: 'DNS',
      endpoints: [],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
    }),
    serviceEntry({
      name: 'wide',
      hosts: ['wide.example.com'],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      spec: { addresses: manyAddresses },
    }),
  )
}

let upstream: DnsServer
let proxy: ProxyProcess
let dnsPort: number
let resolver: Resolver

beforeAll(async () => {
  upstream = await startDnsServer()
  upstream.set('upstream.example.test', { addresses: ['192.0.2.50'], ttl: 7 })
  upstream.set('broken.example.test', 'SERVFAIL')
  upstream.set('many.example.test', { addresses: manyAddresses })
  ;[dnsPort] = await freePorts(1)
  proxy = await startProxy({
    resources: { 'services.yaml': services('10.96.0.10') },
    extraListeners: `  dns: {port: ${dnsPort}, address: 127.0.0.1, enabled: true}\n`,
    extraBootstrap: `dns: {servers: ['${upstream.address}']}\n`,
  })
  resolver = new Resolver({ timeout: 2000, tries: 1 })
  resolver.setServers([`127.0.0.1:${dnsPort}`])
})

afterAll(async () => {
  await proxy?.stop()
  await upstream?.close()
})

/** Sends one datagram to the proxy and waits up to `waitMs` for one back. */
function udpExchange(message: Buffer, waitMs = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4')
    const timer = setTimeout(() => {
      socket.close()
      resolve(undefined)
    }, waitMs)
    socket.on('message', (reply) => {
      clearTimeout(timer)
      socket.close()
      resolve(reply)
    })
    socket.send(message, dnsPort, '127.0.0.1')
  })
}

/** One query over a TCP connection of its own. */
function tcpExchange(query: dnsPacket.Packet): Promise<dnsPacket.DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = connect(dnsPort, '127.0.0.1')
    let received = Buffer.alloc(0)
    socket.on('error', reject)
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        socket.destroy()
        resolve(dnsPacket.decode(received.subarray(2, 2 + received.readUInt16BE(0))))
      }
    })
    socket.write(dnsPacket.streamEncode(query))
  })
}

const dataOf = (a: dnsPacket.Answer): unknown => ('data' in a ? a.data : undefined)

function question(name: string, type: 'A' | 'AAAA' = 'A', id = 4242): dnsPacket.Packet {
  return { type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] }
}

async function errorCode(lookup: Promise<unknown>): Promise<string> {
  try {
    await lookup
    return 'answered'
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'no code'
  }
}

describe('DNS proxy', () => {
  it('answers a ServiceEntry host and its short forms from its addresses, authoritatively', async () => {
    for (const name of [
      'reviews',
      'reviews.default',
      'reviews.default.svc',
      'reviews.default.svc.cluster.local',
    ])
      expect(await resolver.resolve4(name), name).toEqual(['10.96.0.10'])
    expect(await resolver.resolve6('reviews')).toEqual(['fd00::10'])
    const reply = dnsPacket.decode(
      (await udpExchange(dnsPacket.encode(question('Reviews.Default')))) as Buffer,
    )
    expect(reply.id).toBe(4242)
    expect(reply.flag_aa).toBe(true)
    expect(reply.answers?.[0]).toMatchObject({ type: 'A', ttl: 30, data: '10.96.0.10' })
    expect(upstream.queries.has('reviews A')).toBe(false)
  })

  it('answers an auto-allocated address for a host without addresses, and no AAAA for it', async () => {
    const [address] = await resolver.resolve4('api.example.com')
    expect(address).toMatch(/^240\.240\.\d+\.\d+$/)
    // A known name without an address of the family: NOERROR with no records (Node calls it ENODATA), not NXDOMAIN.
    expect(await errorCode(resolver.resolve6('api.example.com'))).toBe('ENODATA')
    expect(upstream.queries.has('api.example.com AAAA')).toBe(false)
  })

  it('forwards other names to the upstream resolver and relays its answers and failures as they are', async () => {
    const answered = await resolver.resolve4('upstream.example.test', { ttl: true })
    expect(answered).toEqual([{ address: '192.0.2.50', ttl: 7 }])
    expect(upstream.queries.get('upstream.example.test A')).toBeGreaterThan(0)
    expect(await errorCode(resolver.resolve4('missing.example.test'))).toBe('ENOTFOUND')
    expect(await errorCode(resolver.resolve4('broken.example.test'))).toBe('ESERVFAIL')
  })

  it('answers over TCP, local names and forwarded ones (forwarded over TCP)', async () => {
    const local = await tcpExchange(question('reviews'))
    expect(local.answers?.map((a) => dataOf(a))).toEqual(['10.96.0.10'])
    const forwarded = await tcpExchange(question('upstream.example.test', 'A', 7))
    expect(forwarded.id).toBe(7)
    expect(forwarded.answers?.map((a) => dataOf(a))).toEqual(['192.0.2.50'])
    expect(upstream.queriesOverTcp.get('upstream.example.test A')).toBe(1)
  })

  it('truncates a UDP answer bigger than the client takes; the client gets it all over TCP', async () => {
    for (const name of ['wide.example.com', 'many.example.test']) {
      const truncated = dnsPacket.decode((await udpExchange(dnsPacket.encode(question(name)))) as Buffer)
      expect(truncated.flag_tc, name).toBe(true)
      expect(truncated.answers, name).toEqual([])
      const whole = await tcpExchange(question(name))
      expect(whole.answers?.map((a) => dataOf(a)).sort(), name).toEqual([...manyAddresses].sort())
      // c-ares asks again over TCP by itself when the answer comes back truncated.
      expect((await resolver.resolve4(name)).sort(), name).toEqual([...manyAddresses].sort())
    }
    expect(upstream.queriesOverTcp.get('many.example.test A')).toBeGreaterThanOrEqual(1)
  })

  it('survives garbage: FORMERR to a query header with a broken body, silence to noise, and the next query answers', async () => {
    const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])
    const broken = Buffer.concat([header, Buffer.from([0x3f, 0x61])])
    const formerr = await udpExchange(broken)
    expect(formerr?.readUInt16BE(0)).toBe(0x1234)
    expect((formerr?.readUInt16BE(2) ?? 0) & 0x800f).toBe(0x8001)
    expect(await udpExchange(Buffer.from([1, 2, 3]), 300)).toBeUndefined()
    // A response is not a query: no reply (no loops between two DNS servers).
    const response = dnsPacket.encode({ ...question('reviews'), type: 'response' })
    expect(await udpExchange(response, 300)).toBeUndefined()
    for (let i = 0; i < 50; i++) {
      const noise = Buffer.from(
        Array.from({ length: 1 + ((i * 37) % 300) }, (_, j) => (i * 131 + j * 17) & 0xff),
      )
      await udpExchange(noise, 20)
    }
    const garbageOverTcp = connect(dnsPort, '127.0.0.1')
    garbageOverTcp.on('error', () => {})
    garbageOverTcp.end(Buffer.from([0x00, 0x05, 1, 2, 3, 4, 5, 0xff]))
    expect(await resolver.resolve4('reviews')).toEqual(['10.96.0.10'])
    expect(proxy.child.exitCode).toBeNull()
  })

  it('answers from the new model after a reload', async () => {
    await proxy.writeResource('services.yaml', services('10.96.0.99'))
    await eventually(async () => (await resolver.resolve4('reviews')).join() === '10.96.0.99')
    // The allocated address is the same after the reload.
    const before = await resolver.resolve4('api.example.com')
    await proxy.writeResource('services.yaml', services('10.96.0.98'))
    await eventually(async () => (await resolver.resolve4('reviews')).join() === '10.96.0.98')
    expect(await resolver.resolve4('api.example.com')).toEqual(before)
  })

  it('shows its name table in /config_dump', async () => {
    const dump = (await (await proxy.admin('/config_dump')).json()) as {
      model: { dnsTable: { names: Record<string, { v4: string[]; v6: string[] }> } }
    }
    const names = dump.model.dnsTable.names
    expect(names.reviews).toEqual({ v4: ['10.96.0.98'], v6: ['fd00::10'] })
    expect(names['api.example.com'].v4[0]).toMatch(/^240\.240\./)
  })

  it("counts requests as Istio's agent does", async () => {
    const text = await (await fetch(`http://127.0.0.1:${proxy.statsPort}/stats/prometheus`)).text()
    const value = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? -1)
    expect(value('istio_agent_dns_requests_total')).toBeGreaterThan(10)
    expect(value('istio_agent_dns_upstream_requests_total')).toBeGreaterThan(3)
    expect(value('istio_agent_dns_upstream_requests_total')).toBeLessThan(
      value('istio_agent_dns_requests_total'),
    )
  })
})
