// Regression test for header edits: a configured value beyond ASCII is written as its UTF-8 bytes (what Envoy sends), never a string node refuses.

import { describe, expect, it } from 'vitest'
import { HeaderEdits } from './header-edits.ts'

describe('HeaderEdits', () => {
  it('writes text beyond ASCII as its UTF-8 bytes, as Envoy sends the YAML text', () => {
    // Found by test/fuzz/header-building.fuzz.test.ts (shrunk to `add: {x-a: "\u0100"}`): node refused the value, so no answer.
    const headers = ['x-keep', '1']
    new HeaderEdits({ set: { 'X-A': '\u4e2d' }, add: { 'x-b': 'caf\u00e9' } }).applyTo(headers)
    expect(headers).toEqual(['x-keep', '1', 'x-a', '\u00e4\u00b8\u00ad', 'x-b', 'caf\u00c3\u00a9'])
    expect(Buffer.from(headers[3], 'latin1').toString('utf8')).toBe('\u4e2d')
    // Then shrunk to `set: {x-a: "\u00ff"}`: sent as the byte 0xff, where Envoy sends the UTF-8 bytes c3 bf.
    expect(Buffer.from(headers[5], 'latin1').toString('utf8')).toBe('caf\u00e9')
  })
})

describe('HeaderEdits.describe', () => {
  it('tells set, add and remove apart as configured', () => {
    const edits = new HeaderEdits({ set: { 'X-Set': 'a' }, add: { 'x-add': 'b' }, remove: ['X-Gone'] })
    expect(edits.describe()).toEqual({ set: [['x-set', 'a']], add: [['x-add', 'b']], remove: ['x-gone'] })
    expect(HeaderEdits.none.describe()).toEqual({ set: [], add: [], remove: [] })
  })
})
