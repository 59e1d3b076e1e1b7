// MurmurHash3 (x86, 32-bit) over a string's UTF-16 code units: the consistent-hash load balancers' hash.

/**
 * Envoy hashes with xxHash64; Node has no xxHash, and a 32-bit MurmurHash3 is fast in JavaScript
 * (Math.imul, no BigInt) and mixes well enough for ring positions and Maglev permutations. Two code
 * units make one 32-bit block, so the result equals MurmurHash3 of the string's UTF-16LE bytes.
 * Returns an unsigned 32-bit integer.
 */
export function hash32(text: string, seed = 0): number {
  let h = seed | 0
  const n = text.length
  let i = 0
  for (; i + 1 < n; i += 2) {
    let k = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if (i < n) {
    let k = Math.imul(text.charCodeAt(i), 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
  }
  h ^= n * 2
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A 64-bit hash as 16 hex digits (two seeds), for values Envoy prints as a hex xxHash64. */
export function hashHex64(text: string): string {
  return hash32(text, 0).toString(16).padStart(8, '0') + hash32(text, 1).toString(16).padStart(8, '0')
}
