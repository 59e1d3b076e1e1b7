import { describe, expect, it } from 'vitest'
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
        stats: { port: 15090 },
        health: { port: 15021 },
      },
      capture: 'none',
      resources: [],
      terminationDrainDuration: '5s',
      protocolDetectionTimeout: '0s',
      pathNormalization: { normalization: 'BASE' },
      rateLimits: [],
      concurrency: 1,
    })
  })

  it('fills the defaults inside partly written sections', () => {
    const bootstrap = bootstrapSchema.parse({
      node: { workload: 'reviews-v2', labels: { app: 'reviews' } },
      listeners: { admin: { port: 0 }, health: { address: '0.0.0.0' } },
      telemetry: { accessLog: {}, tracing: { otlpEndpoint: 'http://127.0.0.1:4318/v1/traces' } },
    })
    expect(bootstrap.node).toMatchObject({
      workload: 'reviews-v2',
      namespace: 'default',
      labels: { app: 'reviews' },
    })
    expect(bootstrap.listeners.admin).toEqual({ port: 0, address: '127.0.0.1' })
    expect(bootstrap.listeners.health).toEqual({ port: 15021, address: '0.0.0.0' })
    expect(bootstrap.telemetry).toEqual({
      accessLog: { path: '/dev/stdout', encoding: 'TEXT' },
      tracing: {
        otlpEndpoint: 'http://127.0.0.1:4318/v1/traces',
        samplingPercent: 1,
        propagation: ['W3C', 'B3'],
      },
    })
  })

  it('accepts the capture modes and TLS files that later work implements', () => {
    const bootstrap = bootstrapSchema.parse({
      capture: 'iptables',
      tls: { certChain: 'c.pem', privateKey: 'k.pem', rootCert: 'r.pem' },
    })
    expect(bootstrap.capture).toBe('iptables')
    expect(bootstrap.tls).toEqual({ certChain: 'c.pem', privateKey: 'k.pem', rootCert: 'r.pem' })
  })
})
