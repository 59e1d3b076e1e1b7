// gRPC message counting across chunk boundaries (Length-Prefixed-Message framing).

import { describe, expect, it } from 'vitest'
import { GrpcFrameCounter } from './grpc-frame-counter.ts'

function message(payload: number): Buffer {
  const b = Buffer.alloc(5 + payload, 7)
  b[0] = 0
  b.writeUInt32BE(payload, 1)
  return b
}

describe('GrpcFrameCounter', () => {
  it('counts messages in one chunk, empty messages included', () => {
    const stream = Buffer.concat([message(3), message(0), message(300)])
    expect(new GrpcFrameCounter().count(stream)).toBe(3)
  })

  it('counts the same at every split, byte by byte included', () => {
    const stream = Buffer.concat([message(1), message(260), message(0), message(70000)])
    for (const size of [1, 2, 4, 5, 6, 100, 4096]) {
      const counter = new GrpcFrameCounter()
      let total = 0
      for (let at = 0; at < stream.length; at += size) total += counter.count(stream.subarray(at, at + size))
      expect(total, `chunks of ${size}`).toBe(4)
    }
  })

  it('does not count a message whose prefix has not started yet', () => {
    const counter = new GrpcFrameCounter()
    const m = message(10)
    expect(counter.count(m.subarray(0, 12))).toBe(1)
    expect(counter.count(m.subarray(12))).toBe(0)
    expect(counter.count(message(2))).toBe(1)
  })
})
