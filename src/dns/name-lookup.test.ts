// Unit tests for answering a question from the DNS table: exact names, case, wildcards, the search-domain CNAME, other types.

import type { Answer } from 'dns-packet'
import { describe, expect, it } from 'vitest'
import type { DnsTable } from '../config/compile/dns-table.ts'
import { lookupName } from './name-lookup.ts'

const table: DnsTable = {
  names: new Map([
    ['reviews', { v4: ['10.96.0.10'], v6: [] }],
    ['reviews.default.svc.cluster.local', { v4: ['10.96.0.10'], v6: [] }],
    ['pair.example.com', { v4: ['10.0.0.1', '10.0.0.2'], v6: ['fd00::1'] }],
  ]),
  wildcards: new Map([
    ['example.org', { v4: ['192.0.2.1'], v6: [] }],
    ['deep.example.org', { v4: ['192.0.2.2'], v6: [] }],
  ]),
}
const dataOf = (a: Answer): unknown => ('data' in a ? a.data : undefined)
const search = ['default.svc.cluster.local', 'svc.cluster.local']

describe('lookupName', () => {
  it('answers known names in any case, with or without the trailing dot, named as asked', () => {
    expect(lookupName(table, search, 'A', 'Reviews.')).toEqual([
      { type: 'A', name: 'Reviews', ttl: 30, data: '10.96.0.10' },
    ])
    expect(lookupName(table, search, 'AAAA', 'pair.example.com')).toEqual([
      { type: 'AAAA', name: 'pair.example.com', ttl: 30, data: 'fd00::1' },
    ])
  })

  it('answers a known name without that family with no records, and leaves unknown names and other types upstream', () => {
    expect(lookupName(table, search, 'AAAA', 'reviews')).toEqual([])
    expect(lookupName(table, search, 'A', 'unknown.example.com')).toBeUndefined()
    expect(lookupName(table, search, 'MX', 'reviews')).toBeUndefined()
    expect(lookupName(table, search, 'TXT', 'pair.example.com')).toBeUndefined()
  })

  it('answers every address, rotated between answers', () => {
    const firsts = new Set<unknown>()
    for (let i = 0; i < 200; i++) {
      const answers = lookupName(table, search, 'A', 'pair.example.com') ?? []
      expect(answers.map((a) => dataOf(a)).sort()).toEqual(['10.0.0.1', '10.0.0.2'])
      firsts.add(dataOf(answers[0]))
    }
    expect(firsts.size).toBe(2)
  })

  it('matches the most specific wildcard host, never the bare suffix', () => {
    expect(lookupName(table, search, 'A', 'a.b.deep.example.org')?.[0]).toMatchObject({
      name: 'a.b.deep.example.org',
      data: '192.0.2.2',
    })
    expect(lookupName(table, search, 'A', 'x.example.org')?.[0]).toMatchObject({ data: '192.0.2.1' })
    expect(lookupName(table, search, 'A', 'example.org')).toBeUndefined()
  })

  it('answers a name expanded by the first search domain with a CNAME to the host and its addresses', () => {
    expect(lookupName(table, search, 'A', 'pair.example.com.default.svc.cluster.local')).toEqual([
      {
        type: 'CNAME',
        name: 'pair.example.com.default.svc.cluster.local',
        ttl: 30,
        data: 'pair.example.com',
      },
      expect.objectContaining({ type: 'A', name: 'pair.example.com' }),
      expect.objectContaining({ type: 'A', name: 'pair.example.com' }),
    ])
    // Only the first search domain, as Istio stores it.
    expect(lookupName(table, search, 'A', 'pair.example.com.svc.cluster.local')).toBeUndefined()
    expect(lookupName(table, [], 'A', 'pair.example.com.default.svc.cluster.local')).toBeUndefined()
  })
})
