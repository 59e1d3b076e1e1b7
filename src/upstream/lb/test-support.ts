// Test helpers for the load balancers: fake endpoints and requests, and a seeded random source.

import type { LbRequest } from './hash-policy.ts'
import type { LbEndpoint, Random } from './load-balancer.ts'

export interface FakeEndpoint extends LbEndpoint {
  readonly hostPort: string
  weight: number
  activeRequests: number
}

export function endpoints(names: string, weights: number[] = []): FakeEndpoint[] {
  return [...names].map((name, i) => ({ hostPort: name, weight: weights[i] ?? 1, activeRequests: 0 }))
}

/** Mulberry32: a small seeded PRNG, so distribution tests are deterministic. */
export function seeded(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Returns the given numbers in turn. */
export function scripted(...values: number[]): Random {
  let i = 0
  return () => values[i++ % values.length]
}

export function request(
  headers: Record<string, string> = {},
  query: Record<string, string> = {},
  remoteAddress = '10.1.2.3',
): LbRequest {
  const rawHeaders = Object.entries(headers).flat()
  return {
    rawHeader: (name) => headers[name],
    queryParam: (name) => query[name],
    req: {
      rawHeaders,
      socket: { remoteAddress, remotePort: 40000, localAddress: '127.0.0.1', localPort: 15001 },
    },
    hashCookie: undefined,
  }
}

/** How many of `n` picks went to each endpoint, by hostPort. */
export function tally(pick: () => LbEndpoint, n: number): Record<string, number> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const name = pick().hostPort
    counts[name] = (counts[name] ?? 0) + 1
  }
  return counts
}
