// Unit tests for how a connection pool policy becomes undici Pool options.

import { describe, expect, it } from 'vitest'
import { defaultClusterPolicy } from '../config/compile/traffic-policy.ts'
import type { ConnectionPoolModel } from '../config/model.ts'
import { http2PoolOptions, poolKey, poolOptions } from './upstream-endpoint.ts'

const settings = (over: Partial<ConnectionPoolModel> = {}) => ({
  connectTimeoutMs: 250,
  protocol: 'http1' as const,
  maxResponseHeadersBytes: 61_440,
  connectionPool: { ...defaultClusterPolicy.connectionPool, ...over },
})

describe('poolOptions', () => {
  it("by default: unlimited connections, Envoy's 1 h idle timeout (Istio sets none), no per-connection limit", () => {
    const o = poolOptions(settings())
    expect(o).toMatchObject({
      connectTimeout: 250,
      connections: null,
      keepAliveTimeout: 3_600_000,
      keepAliveMaxTimeout: 3_600_000,
      pipelining: 1,
      // The bootstrap's limits.maxResponseHeadersKb, on both protocols' pools.
      maxHeaderSize: 61_440,
    })
    expect(http2PoolOptions(settings()).idleTimeoutMs).toBe(3_600_000)
    expect(http2PoolOptions(settings()).maxResponseHeadersBytes).toBe(61_440)
    expect(o.maxRequestsPerClient).toBeUndefined()
    expect(o.factory).toBeUndefined()
    expect(o.connect).toBeUndefined()
  })

  it('maps maxConnections, maxRequestsPerConnection, idle timeout, max duration and TCP keepalive', () => {
    const o = poolOptions(
      settings({
        maxConnections: 3,
        maxRequestsPerConnection: 10,
        idleTimeoutMs: 2000,
        maxConnectionDurationMs: 60_000,
        tcpKeepaliveTimeMs: 30_000,
      }),
    )
    expect(o).toMatchObject({
      connections: 3,
      maxRequestsPerClient: 10,
      keepAliveTimeout: 2000,
      keepAliveMaxTimeout: 2000,
      connect: { keepAlive: true, keepAliveInitialDelay: 30_000 },
    })
    expect(o.factory).toBeTypeOf('function')
    // Istio's idle timeout 0 disables it: the longest timer Node has.
    expect(poolOptions(settings({ idleTimeoutMs: 0 })).keepAliveTimeout).toBe(2_147_483_647)
  })

  it('keys pools by address and the settings that shape them', () => {
    expect(poolKey('10.0.0.1', 80, settings())).toBe(poolKey('10.0.0.1', 80, settings()))
    expect(poolKey('10.0.0.1', 80, settings())).not.toBe(
      poolKey('10.0.0.1', 80, settings({ maxConnections: 1 })),
    )
    expect(poolKey('10.0.0.1', 80, settings())).not.toBe(poolKey('10.0.0.1', 81, settings()))
  })
})
