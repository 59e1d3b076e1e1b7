// Scenario: a Telemetry resource written, broken and removed under a running proxy changes the TelemetryPolicy its model holds (admin /config_dump), and a bad one keeps the last good policy.

import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TelemetryPolicy } from '../src/telemetry/telemetry-policy.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

interface Dump {
  model: { version: number; telemetry: TelemetryPolicy }
  lastError: { messages: { file: string; line: number; message: string }[] } | null
}

let proxy: ProxyProcess
let app: Upstream

/**
 * telemetry/v1alpha1/telemetry.proto: the namespace-wide Telemetry turns REQUEST_COUNT off for the server
 * side, tags every metric with a literal, samples 25 % of traces and logs only errors.
 */
const namespaceTelemetry = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: namespace-default, namespace: default}
spec:
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT, mode: SERVER}
      disabled: true
    - tagOverrides:
        team: {value: "'checkout'"}
  tracing:
  - randomSamplingPercentage: 25
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: response.code >= 500}
`

/** The same resource with a metric name Istio does not have (line 7). */
const brokenTelemetry = namespaceTelemetry.replace('metric: REQUEST_COUNT,', 'metric: REQUEST_COUNTS,')

async function dump(): Promise<Dump> {
  return (await (await proxy.admin('/config_dump')).json()) as Dump
}

beforeAll(async () => {
  app = await startUpstream('app')
  const [ingress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.sidecar({ ingress: [istio.loopbackIngress(ingress, app.port, 'HTTP', 'http')] }),
    },
    extraBootstrap:
      'telemetry:\n  tracing: {otlpEndpoint: "http://127.0.0.1:4318/v1/traces", samplingPercent: 1}\n',
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

describe('Telemetry across reloads', () => {
  it('a Telemetry resource added by a reload changes the policy; a broken one keeps it; removing it restores the bootstrap default', async () => {
    const before = (await dump()).model
    expect(before.telemetry.inbound.metrics.REQUEST_COUNT).toEqual({ disabled: false, tagOverrides: [] })
    expect(before.telemetry.inbound.tracing?.samplingPercent).toBe(1)
    expect(before.telemetry.inbound.accessLog).toBeUndefined()

    await proxy.writeResource('telemetry.yaml', namespaceTelemetry)
    await eventually(async () => (await dump()).model.version > before.version)
    const applied = (await dump()).model.telemetry
    expect(applied.inbound.metrics.REQUEST_COUNT.disabled).toBe(true)
    expect(applied.outbound.metrics.REQUEST_COUNT).toEqual({
      disabled: false,
      tagOverrides: [{ tag: 'team', operation: 'UPSERT', value: 'checkout' }],
    })
    expect(applied.inbound.tracing?.samplingPercent).toBe(25)
    expect(applied.outbound.accessLog).toMatchObject({
      path: '/dev/stdout',
      encoding: 'TEXT',
      filter: { expression: 'response.code >= 500', root: { kind: 'compare', op: '>=', value: 500 } },
    })

    await proxy.writeResource('telemetry.yaml', brokenTelemetry)
    await eventually(async () => (await dump()).lastError !== null)
    const rejected = await dump()
    expect(rejected.lastError?.messages).toContainEqual(
      expect.objectContaining({
        file: join(proxy.dir, 'istio', 'telemetry.yaml'),
        line: 7,
        message: expect.stringContaining("'spec.metrics[0].overrides[0].match.metric': invalid value"),
      }),
    )
    expect(rejected.model.telemetry).toEqual(applied)

    await rm(join(proxy.dir, 'istio', 'telemetry.yaml'))
    await eventually(async () => (await dump()).lastError === null)
    expect((await dump()).model.telemetry).toEqual(before.telemetry)
  })
})
