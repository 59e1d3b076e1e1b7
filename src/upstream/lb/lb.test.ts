// Unit tests for the round-robin load balancers.

import { describe, expect, it } from 'vitest'
import type { UpstreamEndpoint } from '../upstream-endpoint.ts'
import { RoundRobin } from './round-robin.ts'
import { WeightedRoundRobin } from './weighted-round-robin.ts'

const endpoints = ['a', 'b', 'c'].map((hostPort) => ({ hostPort }) as UpstreamEndpoint)

function picks(lb: { pick(e: readonly UpstreamEndpoint[]): UpstreamEndpoint }, n: number): string {
  return Array.from({ length: n }, () => lb.pick(endpoints).hostPort).join('')
}

describe('load balancers', () => {
  it('round robin cycles through every endpoint in order', () => {
    expect(picks(new RoundRobin(0), 7)).toBe('abcabca')
  })

  it('weighted round robin gives each endpoint its share, interleaved', () => {
    const sequence = picks(new WeightedRoundRobin([5, 1, 1]), 14)
    expect(sequence).toBe('aabacaaaabacaa')
    expect([...sequence].filter((c) => c === 'a')).toHaveLength(10)
  })
})
