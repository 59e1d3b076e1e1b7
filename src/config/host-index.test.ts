// Unit tests for the host index: exact names, longest wildcard, first one wins.

import { describe, expect, it } from 'vitest'
import { HostIndex } from './host-index.ts'

describe('HostIndex', () => {
  it('prefers an exact host, then the longest wildcard, and keeps the first value per pattern', () => {
    const index = new HostIndex<string>()
    index.add('*', 'any')
    index.add('*.example.com', 'wide')
    index.add('*.api.example.com', 'narrow')
    index.add('a.api.example.com', 'exact')
    index.add('a.api.example.com', 'second')
    index.add('*.example.com', 'later')
    expect(index.lookup('a.api.example.com')).toBe('exact')
    expect(index.lookup('b.api.example.com')).toBe('narrow')
    expect(index.lookup('b.example.com')).toBe('wide')
    expect(index.lookup('example.org')).toBe('any')
  })

  it('finds nothing when nothing covers the host', () => {
    const index = new HostIndex<number>()
    index.add('reviews.default.svc.cluster.local', 1)
    expect(index.lookup('ratings.default.svc.cluster.local')).toBeUndefined()
  })
})
