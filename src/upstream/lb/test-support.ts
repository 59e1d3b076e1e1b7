// Test helpers for the load balancers: fake endpoints and requests, a seeded random source, a reference xxHash64.

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
  const search = new URLSearchParams(query).toString()
  return {
    req: {
      rawHeaders,
      url: search === '' ? '/' : `/?${search}`,
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

export const MASK_64 = (1n << 64n) - 1n
const P1 = 11400714785074694791n
const P2 = 14029467366897019727n
const P3 = 1609587929392839161n
const P4 = 9650029242287828579n
const P5 = 2870177450012600261n

/** XXH64 written from the xxHash specification (doc/xxhash_spec.md) with BigInt, byte by byte. */
export function referenceXxh64(bytes: Uint8Array, seed = 0n): bigint {
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & MASK_64
  const read = (at: number, n: number) => {
    let v = 0n
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i])
    return v
  }
  const round = (acc: bigint, input: bigint) => (rotl((acc + input * P2) & MASK_64, 31n) * P1) & MASK_64
  const merge = (acc: bigint, v: bigint) => ((acc ^ round(0n, v)) * P1 + P4) & MASK_64
  let at = 0
  let h: bigint
  if (bytes.length >= 32) {
    const v = [(seed + P1 + P2) & MASK_64, (seed + P2) & MASK_64, seed, (seed - P1) & MASK_64]
    for (; at + 32 <= bytes.length; at += 32)
      for (let i = 0; i < 4; i++) v[i] = round(v[i], read(at + 8 * i, 8))
    h = (rotl(v[0], 1n) + rotl(v[1], 7n) + rotl(v[2], 12n) + rotl(v[3], 18n)) & MASK_64
    for (const lane of v) h = merge(h, lane)
  } else h = (seed + P5) & MASK_64
  h = (h + BigInt(bytes.length)) & MASK_64
  for (; at + 8 <= bytes.length; at += 8) h = (rotl(h ^ round(0n, read(at, 8)), 27n) * P1 + P4) & MASK_64
  if (at + 4 <= bytes.length) {
    h = (rotl(h ^ ((read(at, 4) * P1) & MASK_64), 23n) * P2 + P3) & MASK_64
    at += 4
  }
  for (; at < bytes.length; at++) h = (rotl(h ^ ((BigInt(bytes[at]) * P5) & MASK_64), 11n) * P1) & MASK_64
  h = ((h ^ (h >> 33n)) * P2) & MASK_64
  h = ((h ^ (h >> 29n)) * P3) & MASK_64
  return h ^ (h >> 32n)
}
