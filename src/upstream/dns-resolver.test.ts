// Unit tests for DnsResolver against a real DNS server on loopback and a real hosts file.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DnsServer, startDnsServer } from '../../test/harness/dns-server.ts'
import type { DnsLookupFamily } from '../bootstrap/dns.ts'
import { defaultDnsSettings } from '../bootstrap/dns-defaults.ts'
import { DnsResolutionError, DnsResolver } from './dns-resolver.ts'

let server: DnsServer
let dir: string
let hostsFile: string

beforeAll(async () => {
  server = await startDnsServer()
  server.set('two.test', { addresses: ['127.0.0.2', '127.0.0.3', '::2'], ttl: 30 })
  server.set('v6.test', { addresses: ['::3'], ttl: 5 })
  server.set('mixed-ttl.test', { addresses: ['127.0.0.4', '::4'], ttl: 7 })
  server.set('broken.test', 'SERVFAIL')
  dir = mkdtempSync(join(tmpdir(), 'outrigger-hosts-'))
  hostsFile = join(dir, 'hosts')
  writeFileSync(hostsFile, '# comment\n127.0.0.9  Filed.test alias.test # trailing\n::9 filed.test\n')
})

afterAll(async () => {
  await server.close()
  rmSync(dir, { recursive: true, force: true })
})

const resolver = (lookupFamily: DnsLookupFamily = 'V4_ONLY') =>
  new DnsResolver({ ...defaultDnsSettings, servers: [server.address], lookupFamily }, hostsFile)

describe('DnsResolver', () => {
  it("V4_ONLY (Istio's choice for an IPv4 proxy) asks for A records and keeps their TTL", async () => {
    expect(await resolver().resolve('two.test')).toEqual({
      addresses: ['127.0.0.2', '127.0.0.3'],
      ttlMs: 30_000,
    })
    expect(await resolver().resolve('v6.test')).toEqual({ addresses: [], ttlMs: 0 })
  })

  it("follows Envoy's dns_lookup_family for V6_ONLY, AUTO, V4_PREFERRED and ALL", async () => {
    expect((await resolver('V6_ONLY').resolve('two.test')).addresses).toEqual(['::2'])
    expect((await resolver('AUTO').resolve('two.test')).addresses).toEqual(['::2'])
    expect((await resolver('V4_PREFERRED').resolve('v6.test')).addresses).toEqual(['::3'])
    expect((await resolver('AUTO').resolve('mixed-ttl.test')).addresses).toEqual(['::4'])
    expect(await resolver('ALL').resolve('two.test')).toEqual({
      addresses: ['127.0.0.2', '127.0.0.3', '::2'],
      ttlMs: 30_000,
    })
  })

  it('NXDOMAIN is an empty answer (as Envoy treats it); SERVFAIL is a failure', async () => {
    expect(await resolver().resolve('missing.test')).toEqual({ addresses: [], ttlMs: 0 })
    await expect(resolver().resolve('broken.test')).rejects.toBeInstanceOf(DnsResolutionError)
  })

  it('reads the hosts file first, as c-ares getaddrinfo does, and answers localhost itself', async () => {
    const before = server.queries.get('filed.test A') ?? 0
    expect(await resolver().resolve('FILED.test')).toEqual({ addresses: ['127.0.0.9'], ttlMs: 0 })
    expect(await resolver('ALL').resolve('filed.test')).toEqual({ addresses: ['127.0.0.9', '::9'], ttlMs: 0 })
    expect(await resolver().resolve('alias.test')).toEqual({ addresses: ['127.0.0.9'], ttlMs: 0 })
    expect(server.queries.get('filed.test A') ?? 0).toBe(before)
    expect((await resolver().resolve('localhost')).addresses).toEqual(['127.0.0.1'])
  })

  it('an IP literal resolves to itself', async () => {
    expect(await resolver().resolve('10.1.2.3')).toEqual({ addresses: ['10.1.2.3'], ttlMs: 0 })
  })

  it('uses the configured refresh rate', () => {
    expect(resolver().refreshRateMs).toBe(60_000)
    expect(new DnsResolver({ ...defaultDnsSettings, refreshRate: '250ms' }).refreshRateMs).toBe(250)
  })
})
