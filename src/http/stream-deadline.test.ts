import { describe, expect, it } from 'vitest'
import { formatGrpcTimeout } from './grpc.ts'
import { streamDeadlineMs } from './stream-deadline.ts'

const inbound = { maxStreamDurationMs: 0, grpcTimeoutHeaderMaxMs: 0 }

describe('streamDeadlineMs (Envoy ActiveStream::refreshDurationTimeout)', () => {
  it("Istio's inbound route: grpc-timeout is the deadline, uncapped; without one there is none", () => {
    expect(streamDeadlineMs(inbound, '250m')).toBe(250)
    expect(streamDeadlineMs(inbound, '2H')).toBe(7_200_000)
    expect(streamDeadlineMs(inbound, undefined)).toBeUndefined()
    expect(streamDeadlineMs(inbound, 'soon')).toBeUndefined()
    // Envoy arms a 0 ms timer for grpc-timeout 0: the deadline has passed.
    expect(streamDeadlineMs(inbound, '0S')).toBe(0)
  })

  it('caps the header at grpc_timeout_header_max, falls back to max_stream_duration', () => {
    const capped = { maxStreamDurationMs: 5_000, grpcTimeoutHeaderMaxMs: 1_000 }
    expect(streamDeadlineMs(capped, '3S')).toBe(1_000)
    expect(streamDeadlineMs(capped, '300m')).toBe(300)
    expect(streamDeadlineMs(capped, undefined)).toBe(5_000)
    const headerIgnored = { maxStreamDurationMs: 5_000, grpcTimeoutHeaderMaxMs: undefined }
    expect(streamDeadlineMs(headerIgnored, '300m')).toBe(5_000)
  })
})

describe('formatGrpcTimeout (Envoy Grpc::Common::toGrpcTimeout)', () => {
  it('writes milliseconds, and a coarser unit past 8 digits, clipped in hours', () => {
    expect(formatGrpcTimeout(1_000)).toBe('1000m')
    expect(formatGrpcTimeout(99_999_999)).toBe('99999999m')
    expect(formatGrpcTimeout(100_000_000)).toBe('100000S')
    expect(formatGrpcTimeout(360_000_000_000_000)).toBe('99999999H')
  })
})
