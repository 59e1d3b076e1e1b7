// Random (version 4) UUIDs for x-request-id, made as one flat string from a pooled batch of random bytes.

import { randomFillSync } from 'node:crypto'

/** Random bytes for 256 ids, refilled when used up (node:crypto's randomUUID batches the same way). */
const random = Buffer.alloc(16 * 256)
let nextByte = random.length
const hexDigits = Buffer.from('0123456789abcdef', 'latin1')
const text = Buffer.alloc(36)

/**
 * A new UUID such as node:crypto's randomUUID() returns. That one joins 20 pieces into a rope that
 * undici's header check then flattens; this one is written into a buffer and read out as one string
 * (about 130 ns against 250 ns including the check, on the bench machine).
 */
export function newRequestId(): string {
  if (nextByte === random.length) {
    randomFillSync(random)
    nextByte = 0
  }
  const at = nextByte
  nextByte += 16
  random[at + 6] = (random[at + 6] & 0x0f) | 0x40 // version 4
  random[at + 8] = (random[at + 8] & 0x3f) | 0x80 // variant 10
  let w = 0
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[w++] = 0x2d // '-'
    const byte = random[at + i]
    text[w++] = hexDigits[byte >> 4]
    text[w++] = hexDigits[byte & 0x0f]
  }
  return text.toString('latin1', 0, 36)
}
