// The bootstrap's `limits` block: defaults, units, and what it refuses.

import { describe, expect, it } from 'vitest'
import { defaultLimits } from '../protocol/limits.ts'
import { compileLimits } from './compile-limits.ts'
import { limitsSchema } from './limits.ts'

describe('bootstrap limits', () => {
  it('compiles an absent block to the documented defaults', () => {
    expect(compileLimits(limitsSchema.parse(undefined))).toEqual(defaultLimits)
  })

  it('reads kilobytes as bytes and durations as milliseconds, keeping the other defaults', () => {
    const limits = compileLimits(
      limitsSchema.parse({
        maxRequestHeadersKb: 8,
        maxResponseHeadersKb: 16,
        requestHeadersTimeout: '1.5s',
        streamIdleTimeout: '0s',
        maxConnections: 10,
        http2: { maxConcurrentStreams: 50 },
      }),
    )
    expect(limits.maxRequestHeadersBytes).toBe(8192)
    expect(limits.maxResponseHeadersBytes).toBe(16384)
    expect(limits.requestHeadersTimeoutMs).toBe(1500)
    expect(limits.streamIdleTimeoutMs).toBe(0)
    expect(limits.maxConnections).toBe(10)
    expect(limits.http2.maxConcurrentStreams).toBe(50)
    expect(limits.http2.prematureResetStreams).toBe(defaultLimits.http2.prematureResetStreams)
    expect(limits.idleTimeoutMs).toBe(defaultLimits.idleTimeoutMs)
  })

  it('refuses unknown keys, non-integers, negative caps and sizes over 8 MiB', () => {
    expect(limitsSchema.safeParse({ maxHeaders: 5 }).success).toBe(false)
    expect(limitsSchema.safeParse({ maxRequestHeadersCount: 1.5 }).success).toBe(false)
    expect(limitsSchema.safeParse({ maxConnections: -1 }).success).toBe(false)
    expect(limitsSchema.safeParse({ maxRequestHeadersKb: 8193 }).success).toBe(false)
    expect(limitsSchema.safeParse({ maxResponseHeadersKb: 8193 }).success).toBe(false)
    expect(limitsSchema.safeParse({ maxResponseHeadersKb: 0 }).success).toBe(false)
    expect(limitsSchema.safeParse({ idleTimeout: 'soon' }).success).toBe(false)
  })
})
