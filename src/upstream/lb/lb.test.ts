// Unit tests for round robin, weighted round robin, least request and random: sequences and distributions.

import { describe, expect, it } from 'vitest'
import { LeastRequest } from './least-request.ts'
import { RandomLb } from './random.ts'
import { RoundRobin } from './round-robin.ts'
import { endpoints, scripted, seeded, tally } from './test-support.ts'
import { WeightedRoundRobin } from './weighted-round-robin.ts'

function sequence(lb: { pick: RoundRobin['pick'] }, list: ReturnType<typeof endpoints>, n: number): string {
  return Array.from({ length: n }, () => lb.pick(list).hostPort).join('')
}

describe('round robin', () => {
  it('cycles through every endpoint in order', () => {
    expect(sequence(new RoundRobin(0), endpoints('abc'), 7)).toBe('abcabca')
  })

  it('cycles over whatever list it is given (ejected endpoints are left out)', () => {
    const lb = new RoundRobin(0)
    expect(sequence(lb, endpoints('ac'), 4)).toBe('acac')
  })
})

describe('weighted round robin', () => {
  it('gives each endpoint its share, interleaved', () => {
    const list = endpoints('abc', [5, 1, 1])
    const lb = new WeightedRoundRobin()
    lb.update(list)
    const seq = sequence(lb, list, 14)
    expect(seq).toBe('aabacaaaabacaa')
    expect([...seq].filter((c) => c === 'a')).toHaveLength(10)
  })

  it('starts a new cycle over a new list', () => {
    const list = endpoints('abc', [5, 1, 1])
    const lb = new WeightedRoundRobin()
    sequence(lb, list, 3)
    expect(sequence(lb, [list[1], list[2]], 4)).toBe('bcbc')
  })
})

describe('least request (power of two choices)', () => {
  it('of two sampled endpoints takes the one with fewer active requests', () => {
    const list = endpoints('ab')
    list[0].activeRequests = 3
    list[1].activeRequests = 1
    expect(new LeastRequest(scripted(0.1, 0.9)).pick(list).hostPort).toBe('b')
    expect(new LeastRequest(scripted(0.9, 0.1)).pick(list).hostPort).toBe('b')
    // Both samples may land on the same endpoint (Envoy samples with replacement).
    expect(new LeastRequest(scripted(0.1, 0.1)).pick(list).hostPort).toBe('a')
  })

  it('keeps a busy endpoint at about 1/n² of the picks', () => {
    const list = endpoints('abcd')
    list[0].activeRequests = 10
    const lb = new LeastRequest(seeded(7))
    const counts = tally(() => lb.pick(list), 16_000)
    // Both samples must land on 'a': 1/16 of 16000 = 1000 (seeded, so deterministic).
    expect(counts.a).toBeGreaterThan(850)
    expect(counts.a).toBeLessThan(1150)
  })

  it('with weights, shares follow weight / (active + 1)', () => {
    const list = endpoints('ab', [3, 1])
    const lb = new LeastRequest(seeded(11))
    const idle = tally(() => lb.pick(list), 8000)
    expect(idle.a / 8000).toBeGreaterThan(0.72)
    expect(idle.a / 8000).toBeLessThan(0.78)
    list[0].activeRequests = 5 // 3/6 against 1/1: a gets a third
    const busy = tally(() => lb.pick(list), 8000)
    expect(busy.a / 8000).toBeGreaterThan(0.3)
    expect(busy.a / 8000).toBeLessThan(0.37)
  })
})

describe('random', () => {
  it('spreads evenly and ignores weights', () => {
    const list = endpoints('abc', [10, 1, 1])
    const lb = new RandomLb(seeded(3))
    const counts = tally(() => lb.pick(list), 30_000)
    for (const name of 'abc') {
      expect(counts[name]).toBeGreaterThan(9500)
      expect(counts[name]).toBeLessThan(10_500)
    }
  })
})
