import { describe, expect, it } from 'vitest'
import { SharedCounters } from '../../shared/shared-counters.ts'
import { TokenBucket } from './token-bucket.ts'

describe('TokenBucket', () => {
  it('starts full, empties, and refills whole intervals up to the maximum', () => {
    const bucket = new TokenBucket(3, 2, 100, { now: () => 0 })
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([
      true,
      true,
      true,
      false,
    ])
    expect(bucket.take(99)).toBe(false)
    expect([bucket.take(100), bucket.take(100), bucket.take(100)]).toEqual([true, true, false])
    // Ten intervals later the bucket holds its maximum, not 20 tokens.
    expect([bucket.take(1100), bucket.take(1100), bucket.take(1100), bucket.take(1100)]).toEqual([
      true,
      true,
      true,
      false,
    ])
  })
})

describe('TokenBucket on a shared block (two workers)', () => {
  it('takes from one set of tokens, and a refill is counted once whichever worker sees it', () => {
    const table = SharedCounters.create(4, false)
    const clock = { t: 1000, now: () => clock.t }
    const w0 = new TokenBucket(4, 2, 100, clock, table.block('ratelimit|x'))
    const w1 = new TokenBucket(4, 2, 100, clock, table.block('ratelimit|x'))
    expect([w0.take(), w1.take(), w0.take(), w1.take(), w0.take(), w1.take()]).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
    ])
    clock.t = 1100
    // One interval: 2 tokens for both workers together, not 2 each.
    expect([w1.take(), w0.take(), w1.take(), w0.take()]).toEqual([true, true, false, false])
  })
})
