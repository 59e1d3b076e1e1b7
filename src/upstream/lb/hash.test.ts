// Unit tests for the consistent-hash function: MurmurHash3 x86_32 vectors and its spread over buckets.

import { describe, expect, it } from 'vitest'
import { hash32, hashHex64 } from './hash.ts'

/** A byte-wise reference MurmurHash3 x86_32, checked against published vectors below. */
function murmur3(bytes: Uint8Array, seed: number): number {
  const mix = (k: number): number =>
    Math.imul((Math.imul(k, 0xcc9e2d51) << 15) | (Math.imul(k, 0xcc9e2d51) >>> 17), 0x1b873593)
  let h = seed | 0
  const tail = bytes.length & ~3
  for (let i = 0; i < tail; i += 4) {
    h ^= mix(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  let k = 0
  const rest = bytes.length & 3
  if (rest >= 3) k ^= bytes[tail + 2] << 16
  if (rest >= 2) k ^= bytes[tail + 1] << 8
  if (rest >= 1) h ^= mix(k ^ bytes[tail])
  h ^= bytes.length
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'))

describe('hash32', () => {
  it('the reference implementation gives the published MurmurHash3 x86_32 values', () => {
    expect(murmur3(ascii(''), 0)).toBe(0)
    expect(murmur3(ascii(''), 1)).toBe(0x514e28b7)
    expect(murmur3(ascii(''), 0xffffffff)).toBe(0x81f16f39)
    expect(murmur3(ascii('hello'), 0)).toBe(0x248bfa47)
    expect(murmur3(ascii('The quick brown fox jumps over the lazy dog'), 0)).toBe(0x2e4ff723)
  })

  it('is MurmurHash3 of the string as UTF-16LE bytes, for any length and seed', () => {
    for (const text of ['', 'a', 'ab', 'abc', '10.0.0.1:9080_17', 'user-42', 'é ü 漢字 🙂']) {
      for (const seed of [0, 1, 0x9747b28c]) {
        expect(hash32(text, seed)).toBe(murmur3(new Uint8Array(Buffer.from(text, 'utf16le')), seed))
      }
    }
  })

  it('spreads similar keys evenly over buckets', () => {
    const buckets = new Array<number>(16).fill(0)
    for (let i = 0; i < 16_000; i++) buckets[hash32(`user-${i}`) % 16]++
    // 1000 expected per bucket; a fixed input set, so this cannot flake.
    for (const count of buckets) expect(Math.abs(count - 1000)).toBeLessThan(120)
  })

  it('hashHex64 gives 16 hex digits from two seeds', () => {
    expect(hashHex64('x')).toMatch(/^[0-9a-f]{16}$/)
    expect(hashHex64('x')).toBe(hashHex64('x'))
    expect(hashHex64('x')).not.toBe(hashHex64('y'))
  })
})
