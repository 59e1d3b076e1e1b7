// Unit tests for the circuit breakers: pending accounting through endpoints, request limits, retry budget.

import { afterEach, describe, expect, it } from 'vitest'
import { type ConnectionPoolModel, UNLIMITED } from '../config/model.ts'
import { CircuitBreaker } from './circuit-breaker.ts'
import { UpstreamEndpoint } from './upstream-endpoint.ts'

const unlimited: ConnectionPoolModel = {
  maxConnections: UNLIMITED,
  maxPendingRequests: UNLIMITED,
  maxRequests: UNLIMITED,
  maxRetries: UNLIMITED,
  maxRequestsPerConnection: 0,
  idleTimeoutMs: undefined,
  maxConnectionDurationMs: undefined,
  tcpKeepaliveTimeMs: undefined,
  h2Upgrade: false,
  useClientProtocol: false,
  maxConcurrentStreams: UNLIMITED,
}

const opened: UpstreamEndpoint[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((e) => e.close()))
})

function endpoint(breaker: CircuitBreaker, limits: ConnectionPoolModel, port = 1): UpstreamEndpoint {
  const e = new UpstreamEndpoint(
    '127.0.0.1',
    port,
    1,
    { connectTimeoutMs: 1000, connectionPool: limits, protocol: 'http1', maxResponseHeadersBytes: 61_440 },
    breaker,
  )
  opened.push(e)
  return e
}

/** Admits and starts a request, as the router and UpstreamRequest do. */
function start(e: UpstreamEndpoint): boolean {
  if (!e.admits()) return false
  e.acquire()
  return true
}

describe('circuit breaker', () => {
  it('counts requests beyond an endpoint’s connections as pending, and overflows past the pending limit', () => {
    const limits = { ...unlimited, maxConnections: 1, maxPendingRequests: 1 }
    const breaker = new CircuitBreaker()
    breaker.configure(limits, undefined)
    const a = endpoint(breaker, limits, 1)
    const b = endpoint(breaker, limits, 2)
    expect(start(a)).toBe(true) // on a connection
    expect(start(a)).toBe(true) // waits
    expect(breaker.pendingRequests).toBe(1)
    expect(start(a)).toBe(false)
    expect(breaker.pendingOverflows).toBe(1)
    expect(start(b)).toBe(true) // b has a free connection
    expect(start(b)).toBe(false) // pending is cluster-wide
    a.release() // the waiting request takes the connection
    expect(breaker.pendingRequests).toBe(0)
    expect(breaker.activeRequests).toBe(2)
    a.release()
    b.release()
    expect([breaker.activeRequests, breaker.pendingRequests]).toEqual([0, 0])
  })

  it('limits requests in flight across the cluster (http2MaxRequests)', () => {
    const limits = { ...unlimited, maxRequests: 2 }
    const breaker = new CircuitBreaker()
    breaker.configure(limits, undefined)
    const a = endpoint(breaker, limits, 1)
    const b = endpoint(breaker, limits, 2)
    expect([start(a), start(b), start(a)]).toEqual([true, true, false])
    expect(breaker.requestOverflows).toBe(1)
    b.release()
    expect(start(a)).toBe(true)
  })

  it('limits concurrent retries by maxRetries', () => {
    const breaker = new CircuitBreaker()
    breaker.configure({ ...unlimited, maxRetries: 1 }, undefined)
    expect(breaker.tryStartRetry()).toBe(true)
    expect(breaker.tryStartRetry()).toBe(false)
    expect(breaker.retryOverflows).toBe(1)
    breaker.endRetry()
    expect(breaker.tryStartRetry()).toBe(true)
  })

  it('a retry budget allows percent of active requests, never fewer than minRetryConcurrency', () => {
    const breaker = new CircuitBreaker()
    breaker.configure({ ...unlimited, maxRetries: 1 }, { percent: 20, minRetryConcurrency: 3 })
    expect(breaker.maxActiveRetries).toBe(3)
    breaker.activeRequests = 25
    expect(breaker.maxActiveRetries).toBe(5)
    const granted = Array.from({ length: 6 }, () => breaker.tryStartRetry())
    expect(granted).toEqual([true, true, true, true, true, false])
  })
})
