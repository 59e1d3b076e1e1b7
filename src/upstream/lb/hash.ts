// xxHash64, Envoy's consistent-hash function (source/common/common/hash.h, HashUtil::xxHash64), from xxhash-wasm.

import xxhash from 'xxhash-wasm'

/**
 * The wasm module is compiled once, when this module is first imported (a top-level await): every
 * importer, config compile included, finds it ready, and no request ever waits on a promise.
 * bench/micro/xxhash64.ts measured it against the other packages (bench/results/xxhash64-*.md).
 */
const { h64, h64Raw } = await xxhash()

/** One 64-bit cell seen as two 32-bit halves, to split a hash without BigInt arithmetic. */
const cell = new BigUint64Array(1)
const halves = new Uint32Array(cell.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const HI = littleEndian ? 1 : 0
const LO = littleEndian ? 0 : 1
/** 2^32, for reducing a hash given as halves. */
const TWO_32 = 0x1_0000_0000

/**
 * xxHash64 of the string's bytes. Node decodes header bytes (HTTP/1 and HTTP/2) one byte to one
 * character (latin1), so a character below 256 is hashed as that byte: the bytes Envoy hashes.
 */
export function xxHash64(text: string, seed = 0n): bigint {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return h64Raw(Buffer.from(text, 'latin1'), seed)
  }
  return h64(text, seed)
}

/** Writes xxHash64(text) into `out`: out[0] the high 32 bits, out[1] the low 32 bits (both unsigned). */
export function xxHash64Into(text: string, out: Uint32Array, seed = 0n): void {
  splitHash64(xxHash64(text, seed), out)
}

/** Splits a 64-bit hash into `out`: out[0] the high 32 bits, out[1] the low 32 bits. */
export function splitHash64(hash: bigint, out: Uint32Array): void {
  cell[0] = hash
  out[0] = halves[HI]
  out[1] = halves[LO]
}

/**
 * (hi × 2^32 + lo) mod m, exact for m below 2^26 (Maglev's table sizes, 100 for the priority level):
 * (hi mod m) × (2^32 mod m) stays below 2^53.
 */
export function mod64(hi: number, lo: number, m: number): number {
  return ((((hi % m) * (TWO_32 % m)) % m) + (lo % m)) % m
}

/** Sixteen lowercase hex digits, as Envoy's Hex::uint64ToHex prints a hash (generated cookie values). */
export function hex64(hash: bigint): string {
  return hash.toString(16).padStart(16, '0')
}
