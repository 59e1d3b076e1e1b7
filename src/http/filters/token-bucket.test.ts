import { describe, expect, it } from 'vitest'
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
