import { describe, expect, it } from 'vitest'
import {
  backoffMs,
  defaultRetryPolicy,
  parseRetryOn,
  RetryOn,
  type RetryPolicy,
  retriableFailure,
  retriableResponse,
} from './retry-policy.ts'

const policy = (retryOn: string): RetryPolicy => ({
  ...defaultRetryPolicy,
  ...parseRetryOn(retryOn),
})

describe('retry policy', () => {
  it('reads policy names and bare status codes', () => {
    const parsed = parseRetryOn('gateway-error, 418,retriable-4xx')
    expect(parsed.on).toBe(RetryOn.gatewayError | RetryOn.retriableStatusCodes | RetryOn.retriable4xx)
    expect([...parsed.statusCodes]).toEqual([418])
  })

  it('decides on responses as Envoy does', () => {
    expect(retriableResponse(policy('5xx'), 500, -1)).toBe(true)
    expect(retriableResponse(policy('gateway-error'), 500, -1)).toBe(false)
    expect(retriableResponse(policy('gateway-error'), 504, -1)).toBe(true)
    expect(retriableResponse(policy('retriable-4xx'), 409, -1)).toBe(true)
    expect(retriableResponse(policy('deadline-exceeded'), 200, 4)).toBe(true)
    expect(retriableResponse(defaultRetryPolicy, 503, -1)).toBe(true)
    expect(retriableResponse(defaultRetryPolicy, 500, -1)).toBe(false)
    expect(retriableResponse(defaultRetryPolicy, 200, 14)).toBe(true)
  })

  it('decides on failures without a response', () => {
    expect(retriableFailure(defaultRetryPolicy, 'connectFailure')).toBe(true)
    expect(retriableFailure(defaultRetryPolicy, 'connectionTermination')).toBe(false)
    expect(retriableFailure(policy('reset'), 'connectionTermination')).toBe(true)
    expect(retriableFailure(policy('5xx'), 'timeout')).toBe(true)
    expect(retriableFailure(policy('5xx'), 'protocolError')).toBe(false)
  })

  it('retries reset-before-request only while no byte reached the upstream (Envoy RetryStateImpl::wouldRetryFromReset)', () => {
    const safe = policy('reset-before-request')
    expect(safe.on).toBe(RetryOn.resetBeforeRequest)
    expect(retriableFailure(safe, 'connectFailure')).toBe(true)
    expect(retriableFailure(safe, 'connectionTermination')).toBe(false)
    expect(retriableFailure(safe, 'remoteReset')).toBe(false)
    expect(retriableFailure(safe, 'refusedStream')).toBe(false)
    expect(retriableFailure(safe, 'timeout')).toBe(false)
    expect(retriableResponse(safe, 503, -1)).toBe(false)
  })

  it('backs off with full jitter, 25ms base, capped at 250ms', () => {
    for (let i = 0; i < 200; i++) {
      expect(backoffMs(defaultRetryPolicy, 1)).toBeLessThan(25)
      expect(backoffMs(defaultRetryPolicy, 2)).toBeLessThan(75)
      expect(backoffMs(defaultRetryPolicy, 10)).toBeLessThan(250)
      expect(backoffMs(defaultRetryPolicy, 10)).toBeGreaterThanOrEqual(0)
    }
  })
})
