import { describe, expect, it } from 'vitest'
import type { LoadBalancerModel } from '../../config/model.ts'
import { HostSet, type HostSetEndpoint } from './host-set.ts'
import { slowStartFactor } from './slow-start.ts'
import { request } from './test-support.ts'

interface Fake extends HostSetEndpoint {
  ejected: boolean
  weight: number
  activeRequests: number
}

function fake(hostPort: string, locality: string, localityWeight: number, weight = 1): Fake {
  return { hostPort, locality, localityWeight, weight, ejected: false, activeRequests: 0 }
}

const roundRobin: LoadBalancerModel = { kind: 'ROUND_ROBIN' }

/** How many of `n` picks went to each endpoint. */
function shares(set: HostSet<Fake>, n: number): Record<string, number> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const e = set.pick(request())
    const key = e?.hostPort ?? 'none'
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}

describe('HostSet', () => {
  it('picks a locality by weight first, then an endpoint within it', () => {
    // Locality a has 3 endpoints but weight 20; b has 1 endpoint with weight 80 (distribute).
    const set = new HostSet(
      0,
      [fake('a1', 'a', 20), fake('a2', 'a', 20), fake('a3', 'a', 20), fake('b1', 'b', 80)],
      roundRobin,
      false,
    )
    const counts = shares(set, 1000)
    expect(counts.b1).toBe(800)
    expect((counts.a1 ?? 0) + (counts.a2 ?? 0) + (counts.a3 ?? 0)).toBe(200)
    expect(Math.min(counts.a1, counts.a2, counts.a3)).toBeGreaterThanOrEqual(66)
  })

  it("scales a locality's weight by its availability (1.4 × healthy share, at most 1)", () => {
    const members = [
      fake('a1', 'a', 4),
      fake('a2', 'a', 4),
      fake('a3', 'a', 4),
      fake('a4', 'a', 4),
      fake('b1', 'b', 4),
    ]
    const set = new HostSet(0, members, roundRobin, false)
    members[0].ejected = true
    members[1].ejected = true
    members[2].ejected = true
    set.refresh(false)
    // a: 4 × min(1, 1.4 × 1/4) = 1.4; b: 4. a4 gets 1.4 / 5.4 of the picks.
    const counts = shares(set, 5400)
    expect(counts.a4).toBe(1400)
    expect(counts.b1).toBe(4000)
    expect(counts.a1).toBeUndefined()
  })

  it('in panic balances over every endpoint, ejected or not, ignoring localities', () => {
    const members = [fake('a1', 'a', 1), fake('b1', 'b', 99)]
    members[0].ejected = true
    members[1].ejected = true
    const set = new HostSet(0, members, roundRobin, false)
    expect(set.pick(request())).toBeUndefined()
    set.refresh(true)
    expect(shares(set, 100)).toEqual({ a1: 50, b1: 50 })
  })

  it('hash balancers weigh ring points by locality share instead of picking a locality', () => {
    const ring: LoadBalancerModel = {
      kind: 'RING_HASH',
      hashKey: { kind: 'header', name: 'x-user' },
      minimumRingSize: 4096,
    }
    const set = new HostSet(0, [fake('a1', 'a', 10), fake('b1', 'b', 90)], ring, false)
    let a = 0
    for (let i = 0; i < 2000; i++) if (set.pick(request({ 'x-user': `user-${i}` }))?.hostPort === 'a1') a++
    expect(a).toBeGreaterThan(100)
    expect(a).toBeLessThan(300)
  })
})

describe("slow start (Envoy's slow_start_config)", () => {
  const warmup = { durationMs: 10_000, minWeightFactor: 0.1, aggression: 1 }

  it('ramps linearly from the minimum to 1 over the window', () => {
    expect(slowStartFactor(0, warmup)).toBe(0.1)
    expect(slowStartFactor(500, warmup)).toBe(0.1)
    expect(slowStartFactor(2500, warmup)).toBe(0.25)
    expect(slowStartFactor(9999, warmup)).toBeCloseTo(0.9999)
    expect(slowStartFactor(10_000, warmup)).toBe(1)
  })

  it('aggression bends the ramp: time factor ^ (1 / aggression)', () => {
    expect(slowStartFactor(2500, { ...warmup, aggression: 2 })).toBe(0.5)
    expect(slowStartFactor(2500, { ...warmup, aggression: 0.5 })).toBe(0.1)
    expect(slowStartFactor(5000, { ...warmup, aggression: 0.5 })).toBe(0.25)
  })
})
