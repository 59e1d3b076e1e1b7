// Unit tests for ring hash and Maglev: stability, spread, weights, disruption, and the fallback to random.

import { describe, expect, it } from 'vitest'
import type { HashKeyModel } from '../../config/model.ts'
import { hash32 } from './hash.ts'
import { Maglev, MaglevTable } from './maglev.ts'
import { HashRing, RingHash } from './ring-hash.ts'
import { endpoints, request, scripted } from './test-support.ts'

const hosts = ['10.0.0.1:9080', '10.0.0.2:9080', '10.0.0.3:9080', '10.0.0.4:9080']
const list = (n: number, weights: number[] = []) =>
  hosts.slice(0, n).map((hostPort, i) => ({ hostPort, weight: weights[i] ?? 1, activeRequests: 0 }))
const keys = Array.from({ length: 20_000 }, (_, i) => hash32(`session-${i}`))

function owners(lookup: (h: number) => number, names: readonly { hostPort: string }[]): string[] {
  return keys.map((k) => names[lookup(k)].hostPort)
}

function shares(assigned: string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const a of assigned) counts.set(a, (counts.get(a) ?? 0) + 1)
  return new Map([...counts].map(([k, v]) => [k, v / assigned.length]))
}

describe('ring hash', () => {
  it('gives each endpoint ceil(minimumRingSize × share) points, weighted', () => {
    const ring = new HashRing(list(2, [2, 1]), 1024)
    const count = (i: number) => ring.owners.filter((o) => o === i).length
    // The lighter endpoint (1/3) gets ceil(1024 / 3) = 342 points; the scale gives the other twice that.
    expect(count(1)).toBe(342)
    expect(count(0)).toBe(684)
    expect([...ring.points]).toEqual([...ring.points].sort((a, b) => a - b))
  })

  it('spreads keys over equal endpoints', () => {
    const three = list(3)
    const ring = new HashRing(three, 1024)
    for (const share of shares(owners((h) => ring.lookup(h), three)).values()) {
      expect(share).toBeGreaterThan(0.28)
      expect(share).toBeLessThan(0.39)
    }
  })

  it('is stable: the same endpoints give the same owner for every key', () => {
    const a = new HashRing(list(3), 1024)
    const b = new HashRing(list(3), 1024)
    expect(owners((h) => a.lookup(h), list(3))).toEqual(owners((h) => b.lookup(h), list(3)))
  })

  it('removing an endpoint moves its keys and few others', () => {
    const full = new HashRing(list(4), 1024)
    const before = owners((h) => full.lookup(h), list(4))
    const survivors = list(4).slice(0, 3)
    const reduced = new HashRing(survivors, 1024)
    const after = owners((h) => reduced.lookup(h), survivors)
    let kept = 0
    let onSurvivors = 0
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === hosts[3]) continue
      onSurvivors++
      if (after[i] === before[i]) kept++
    }
    expect(after).not.toContain(hosts[3])
    expect(kept / onSurvivors).toBeGreaterThan(0.75)
  })

  it('hashes the request key; without one it picks at random', () => {
    const key: HashKeyModel = { kind: 'header', name: 'x-user' }
    const lb = new RingHash(key, 1024, scripted(0.999))
    const four = endpoints('abcd')
    const picked = new Set(
      Array.from({ length: 20 }, () => lb.pick(four, request({ 'x-user': 'alice' })).hostPort),
    )
    expect(picked.size).toBe(1)
    const users = new Set(
      Array.from({ length: 40 }, (_, i) => lb.pick(four, request({ 'x-user': `u${i}` })).hostPort),
    )
    expect(users.size).toBeGreaterThan(2)
    // No header: a random hash (scripted to the top of the ring, which wraps to its first point).
    const ring = new HashRing(four, 1024)
    expect(lb.pick(four, request()).hostPort).toBe(four[ring.lookup(Math.floor(0.999 * 2 ** 32))].hostPort)
  })
})

describe('maglev', () => {
  it('fills the table evenly for equal weights', () => {
    const table = new MaglevTable(list(3), 65537)
    const counts = [0, 0, 0]
    for (const s of table.slots) counts[s]++
    expect(table.slots).not.toContain(-1)
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1)
  })

  it('fills the table in proportion to weights', () => {
    const table = new MaglevTable(list(2, [2, 1]), 65537)
    const heavy = table.slots.filter((s) => s === 0).length
    expect(heavy / 65537).toBeGreaterThan(0.66)
    expect(heavy / 65537).toBeLessThan(0.67)
  })

  it('removing an endpoint moves its keys and few others', () => {
    const full = new MaglevTable(list(4), 65537)
    const before = owners((h) => full.lookup(h), list(4))
    const survivors = list(4).slice(0, 3)
    const reduced = new MaglevTable(survivors, 65537)
    const after = owners((h) => reduced.lookup(h), survivors)
    let kept = 0
    let onSurvivors = 0
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === hosts[3]) continue
      onSurvivors++
      if (after[i] === before[i]) kept++
    }
    expect(kept / onSurvivors).toBeGreaterThan(0.9)
  })

  it('sticks a key to one endpoint', () => {
    const lb = new Maglev({ kind: 'queryParameter', name: 'user' }, 65537)
    const four = endpoints('abcd')
    const picked = new Set(
      Array.from({ length: 20 }, () => lb.pick(four, request({}, { user: 'bob' })).hostPort),
    )
    expect(picked.size).toBe(1)
  })
})
