// Unit tests for reading the machine's resolvers: resolv.conf lines and the bootstrap's server forms.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadResolverConfig, parseResolvConf, parseServer } from './resolv-conf.ts'

describe('resolv.conf', () => {
  it('reads name servers in order and the last search line, skipping comments and what is not an address', () => {
    const config = parseResolvConf(`# generated
nameserver 10.96.0.10
nameserver fe80::1%eth0
nameserver dns.example.com
nameserver 2001:db8::53 ; comment
search Default.svc.cluster.local. svc.cluster.local cluster.local
options ndots:5
`)
    expect(config.servers).toEqual([
      { address: '10.96.0.10', port: 53, family: 4 },
      { address: 'fe80::1%eth0', port: 53, family: 6 },
      { address: '2001:db8::53', port: 53, family: 6 },
    ])
    expect(config.search).toEqual(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'])
  })

  it('parses the bootstrap forms ip, ip:port and [ipv6]:port', () => {
    expect(parseServer('127.0.0.1:5353')).toEqual({ address: '127.0.0.1', port: 5353, family: 4 })
    expect(parseServer('[::1]:5353')).toEqual({ address: '::1', port: 5353, family: 6 })
    expect(parseServer('::1')).toEqual({ address: '::1', port: 53, family: 6 })
    expect(parseServer('dns.example.com:53')).toBeUndefined()
  })

  it('lets the bootstrap servers replace the file name servers and keeps its search domains', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outrigger-resolv-'))
    try {
      const file = join(dir, 'resolv.conf')
      await writeFile(file, 'nameserver 10.0.0.53\nsearch ns.svc.cluster.local\n')
      expect(loadResolverConfig([], file).servers.map((s) => s.address)).toEqual(['10.0.0.53'])
      expect(loadResolverConfig(['127.0.0.1:5300'], file)).toEqual({
        servers: [{ address: '127.0.0.1', port: 5300, family: 4 }],
        search: ['ns.svc.cluster.local'],
      })
      expect(loadResolverConfig([], join(dir, 'absent'))).toEqual({ servers: [], search: [] })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
