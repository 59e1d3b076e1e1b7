import { describe, expect, it } from 'vitest'
import { newRequestId } from './request-id.ts'

describe('newRequestId', () => {
  it('makes version 4 UUIDs, all different, across refills of the random batch', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 1_000; i++) {
      const id = newRequestId()
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      seen.add(id)
    }
    expect(seen.size).toBe(1_000)
  })

  it('uses every hex digit in every free position', () => {
    const digits = Array.from({ length: 36 }, () => new Set<string>())
    for (let i = 0; i < 2_000; i++) {
      const id = newRequestId()
      for (let c = 0; c < 36; c++) digits[c].add(id[c])
    }
    for (let c = 0; c < 36; c++) {
      if ([8, 13, 18, 23].includes(c)) expect([...digits[c]]).toEqual(['-'])
      else if (c === 14) expect([...digits[c]]).toEqual(['4'])
      else if (c === 19) expect(digits[c].size).toBe(4)
      else expect(digits[c].size).toBe(16)
    }
  })
})
