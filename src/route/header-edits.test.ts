// Regression test for header edits: a configured value beyond latin1 is written as its UTF-8 bytes (what Envoy sends), never a string node refuses.

import { describe, expect, it } from 'vitest'
import { HeaderEdits } from './header-edits.ts'

describe('HeaderEdits', () => {
  it('writes text beyond latin1 as UTF-8 bytes, and latin1 text as it is', () => {
    // Found by test/fuzz/header-building.fuzz.test.ts (shrunk to `add: {x-a: "\u0100"}`): node refused the value, so no answer.
    const headers = ['x-keep', '1']
    new HeaderEdits({ set: { 'X-A': '\u4e2d' }, add: { 'x-b': 'caf\u00e9' } }).applyTo(headers)
    expect(headers).toEqual(['x-keep', '1', 'x-a', '\u00e4\u00b8\u00ad', 'x-b', 'caf\u00e9'])
    expect(Buffer.from(headers[3], 'latin1').toString('utf8')).toBe('\u4e2d')
  })
})
