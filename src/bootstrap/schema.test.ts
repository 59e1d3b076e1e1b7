import { describe, expect, it } from 'vitest'
import { validateValue } from '../config/validate-value.ts'
import { bootstrapSchema } from './schema.ts'

describe('bootstrapSchema', () => {
  it('fills every default from an empty file', () => {
    expect(bootstrapSchema.parse({})).toEqual({
      node: {
        workload: 'default',
        namespace: 'default',
        serviceAccount: 'default',
        labels: {},
        cluster: 'Kubernetes',
        trustDomain: 'cluster.local',
        locality: '',
      },
      listeners: {
        outbound: { port: 15001 },
        inbound: { port: 15006 },
        admin: { port: 15000, address: '127.0.0.1' },
        dns: { port: 15053, address: '127.0.0.1', autoAllocate: true },
        stats: { port: 15090, address: '0.0.0.0' },
        health: { port: 15021 },
      },
      capture: 'none',
      resources: [],
      terminationDrainDuration: '5s',
      exitOnZeroActiveConnections: false,
      minimumDrainDuration: '5s',
      appProbers: {},
      protocolDetectionTimeout: '0s',
      rootNamespace: 'istio-system',
      jwksRefreshInterval: '20m',
      pathNormalization: { normalization: 'BASE' },
      rateLimits: [],
      limits: {
        maxRequestHeadersKb: 60,
        maxRequestHeadersCount: 100,
        maxResponseHeadersCount: 100,
        maxResponseHeadersKb: 60,
        requestHeadersTimeout: '60000ms',
        streamIdleTimeout: '300000ms',
        idleTimeout: '3600000ms',
        maxConnectionsPerListener: 0,
        maxConnections: 0,
        http2: {
          maxConcurrentStreams: 1000,
          maxSessionMemoryMb: 64,
          prematureResetStreams: 500,
          maxInvalidFrames: 1000,
          maxRejectedStreams: 100,
        },
      },
      overload: {
        enabled: true,
        refreshInterval: '250ms',
        eventLoopDelaySaturation: '1000ms',
        recovery: 0.02,
        actions: {},
      },
      live: { enabled: false },
      concurrency: 1,
    })
  })

  it('fills the defaults inside partly written sections', () => {
    const bootstrap = bootstrapSchema.parse({
      node: { workload: 'reviews-v2', labels: { app: 'reviews' } },
      listeners: { admin: { port: 0 }, health: { address: '0.0.0.0' } },
    })
    expect(bootstrap.node).toMatchObject({
      workload: 'reviews-v2',
      namespace: 'default',
      labels: { app: 'reviews' },
    })
    expect(bootstrap.listeners.admin).toEqual({ port: 0, address: '127.0.0.1' })
    expect(bootstrap.listeners.health).toEqual({ port: 15021, address: '0.0.0.0' })
  })

  it('still checks the keys not built yet, and warns about each one present by name', () => {
    const messages = (input: unknown): string[] =>
      validateValue(bootstrapSchema, input, []).problems.map((p) => `${p.severity}: ${p.message}`)
    expect(
      messages({
        tls: { certChain: 'c.pem', privateKey: 'k.pem', rootCert: 'r.pem' },
        telemetry: { accessLog: {}, tracing: { otlpEndpoint: 'http://127.0.0.1:4318/v1/traces' } },
      }),
    ).toEqual([])
    expect(messages({ telemetry: { tracing: { otlpEndpoint: 'x', samplingPercent: 200 } } })).toEqual([
      "error: field 'telemetry.tracing.otlpEndpoint': 'x' is not a valid URL",
      "error: field 'telemetry.tracing.samplingPercent': must be between 0 and 100",
    ])
    expect(messages({ capture: 'tproxy' })).toEqual([])
    expect(messages({ capture: 'iptables', listeners: { outbound: { port: 15001, address: 'x' } } })).toEqual(
      ["error: field 'listeners.outbound.address': 'x' is not a valid IP address"],
    )
  })
})
