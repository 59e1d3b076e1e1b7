// Unit tests for xxHash64: Envoy's own vectors, a BigInt reference from the xxHash spec, and the 64-bit helpers.

import { describe, expect, it } from 'vitest'
import { hex64, mod64, splitHash64, xxHash64, xxHash64Into } from './hash.ts'
import { MASK_64, referenceXxh64 } from './test-support.ts'

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'))

describe('xxHash64', () => {
  // envoyproxy/envoy test/common/common/hash_test.cc, TEST(Hash, xxHash)
  const envoyVectors: [string, bigint][] = [
    ['foo', 3728699739546630719n],
    ['bar', 5234164152756840025n],
    ['foo\nbar', 8917841378505826757n],
    ['lyft', 4400747396090729504n],
    ['', 17241709254077376921n],
  ]

  it("gives Envoy's HashUtil::xxHash64 values (hash_test.cc), and so does the reference", () => {
    for (const [text, expected] of envoyVectors) {
      expect(xxHash64(text)).toBe(expected)
      expect(referenceXxh64(latin1(text))).toBe(expected)
    }
  })

  it('equals the reference for every length (all code paths), seed and latin1 byte', () => {
    const texts = Array.from({ length: 70 }, (_, n) =>
      'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2).slice(0, n),
    )
    texts.push('10.0.0.1:9080_17', 'é ü ÿ', 'caf\u00e9-user', '\u0080\u00ff'.repeat(20))
    for (const text of texts) {
      for (const seed of [0n, 1n, 0xffff_ffff_ffff_ffffn, 3728699739546630719n]) {
        expect(xxHash64(text, seed)).toBe(referenceXxh64(latin1(text), seed))
      }
    }
  })

  it('splits a hash into unsigned halves, high first', () => {
    const out = new Uint32Array(2)
    xxHash64Into('foo', out)
    expect((BigInt(out[0]) << 32n) | BigInt(out[1])).toBe(3728699739546630719n)
    splitHash64(0xffff_fffe_0000_0001n, out)
    expect([...out]).toEqual([0xfffffffe, 1])
  })

  it('mod64 reduces a 64-bit value given as halves exactly', () => {
    const samples = [
      0n,
      1n,
      MASK_64,
      3728699739546630719n,
      17241709254077376921n,
      1n << 63n,
      0xdead_beef_0000_0000n,
    ]
    for (let i = 0; i < 200; i++) samples.push(referenceXxh64(latin1(`k${i}`)))
    for (const value of samples) {
      const hi = Number(value >> 32n)
      const lo = Number(value & 0xffff_ffffn)
      for (const m of [7, 17, 100, 65537, 5000011]) expect(mod64(hi, lo, m)).toBe(Number(value % BigInt(m)))
    }
  })

  it("prints 16 lowercase hex digits, as Envoy's Hex::uint64ToHex", () => {
    expect(hex64(0x1an)).toBe('000000000000001a')
    expect(hex64(3728699739546630719n)).toBe('33bf00a859c4ba3f')
  })
})
