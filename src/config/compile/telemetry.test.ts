// Telemetry precedence and merging as istio/istio pilot/pkg/model/telemetry.go does it (applicableTelemetries, mergeMetrics, Tracing, mergeLogs).

import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../../bootstrap/schema.ts'
import {
  type IstioMetric,
  istioMetrics,
  type MetricPolicy,
  meshTelemetryPolicy,
  type TelemetryPolicy,
} from '../../telemetry/telemetry-policy.ts'
import { type ConfigMessage, formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import { compileTelemetry } from './telemetry.ts'

function bootstrap(over: Record<string, unknown> = {}): Bootstrap {
  return {
    ...bootstrapSchema.parse({
      node: { workload: 'reviews-v2', labels: { app: 'reviews', version: 'v2' } },
      ...over,
    }),
    file: 'bootstrap.yaml',
  }
}

/** A Telemetry document; `selector` is `matchLabels` as YAML flow text. */
function telemetry(name: string, namespace: string, spec: string, selector?: string): string {
  return `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${selector === undefined ? '' : `  selector: {matchLabels: ${selector}}\n`}${spec}
`
}

function compile(docs: readonly string[], b: Bootstrap = bootstrap()) {
  const parsed = parseResources(docs.join('---\n'), 't.yaml', 'default')
  expect(parsed.messages.map(formatMessage)).toEqual([])
  const warnings: ConfigMessage[] = []
  const policy = compileTelemetry(b, parsed.resources, warnings)
  return { policy, warnings: warnings.map(formatMessage) }
}

/** The metrics that are on in a direction. */
function enabled(policy: TelemetryPolicy, direction: 'inbound' | 'outbound'): IstioMetric[] {
  return istioMetrics.filter((m) => !policy[direction].metrics[m].disabled)
}

const ALL_OFF = '  metrics: [{overrides: [{disabled: true}]}]'

describe('Telemetry precedence (applicableTelemetries)', () => {
  it('without Telemetry resources is the bootstrap block alone', () => {
    const b = bootstrap({ telemetry: { accessLog: { path: '/tmp/a.log' } } })
    expect(compile([], b).policy).toEqual(meshTelemetryPolicy(b.telemetry))
  })

  it('reads the mesh-wide one from the root namespace, the namespace-wide one, and one whose selector matches', () => {
    expect(enabled(compile([telemetry('mesh', 'istio-system', ALL_OFF)]).policy, 'inbound')).toEqual([])
    expect(enabled(compile([telemetry('ns', 'default', ALL_OFF)]).policy, 'inbound')).toEqual([])
    expect(
      enabled(compile([telemetry('wl', 'default', ALL_OFF, '{app: reviews}')]).policy, 'inbound'),
    ).toEqual([])
    // The bootstrap's rootNamespace decides which namespace is the mesh's.
    expect(
      enabled(
        compile([telemetry('mesh', 'mesh-root', ALL_OFF)], bootstrap({ rootNamespace: 'mesh-root' })).policy,
        'inbound',
      ),
    ).toEqual([])
  })

  it('ignores one in another namespace, one whose selector does not match, and a selector in the root namespace', () => {
    const { policy } = compile([
      telemetry('other', 'other', ALL_OFF),
      telemetry('wl', 'default', ALL_OFF, '{app: reviews, version: v1}'),
      telemetry('root-selector', 'istio-system', ALL_OFF, '{app: reviews}'),
    ])
    expect(enabled(policy, 'inbound')).toEqual(istioMetrics)
    expect(enabled(policy, 'outbound')).toEqual(istioMetrics)
  })

  it('of two without a selector in one namespace, applies the first by name and warns of the other', () => {
    const { policy, warnings } = compile([
      telemetry('b-second', 'default', ALL_OFF),
      telemetry(
        'a-first',
        'default',
        '  metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]}]',
      ),
    ])
    expect(enabled(policy, 'inbound')).toEqual(istioMetrics.filter((m) => m !== 'REQUEST_COUNT'))
    expect(warnings).toEqual([
      't.yaml:1: warning: Telemetry default/b-second is ignored: default/a-first is already the namespace-wide Telemetry (only one without a selector is valid per namespace; the oldest wins, and without creationTimestamp the first by name)',
    ])
  })

  it('applies every Telemetry that selects the workload, in name order, and warns that only one is valid', () => {
    const { policy, warnings } = compile([
      telemetry(
        'b-version',
        'default',
        `  metrics: [{overrides: [{tagOverrides: {team: {value: "'b'"}}}]}]`,
        '{version: v2}',
      ),
      telemetry(
        'a-app',
        'default',
        `  metrics: [{overrides: [{tagOverrides: {team: {value: "'a'"}}}]}]`,
        '{app: reviews}',
      ),
    ])
    expect(policy.inbound.metrics.REQUEST_COUNT.tagOverrides).toEqual([
      { tag: 'team', operation: 'UPSERT', value: 'b' },
    ])
    expect(warnings).toEqual([
      't.yaml:5: warning: Telemetry default/b-version selects workload reviews-v2 as default/a-app does (only one selecting a workload is valid): all of them apply, in name order',
    ])
  })

  it('ignores a Telemetry with targetRefs (gateways and waypoints), which is not namespace-wide either', () => {
    const { policy, warnings } = compile([
      telemetry(
        'gw',
        'default',
        `  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n${ALL_OFF}`,
      ),
    ])
    expect(enabled(policy, 'inbound')).toEqual(istioMetrics)
    expect(warnings).toEqual([
      't.yaml:5: warning: Telemetry default/gw is ignored: targetRef(s) attach it to gateways and waypoints, not to a sidecar (use selector)',
    ])
  })
})

describe('Telemetry metrics (mergeMetrics)', () => {
  it('match.mode: CLIENT is outbound, SERVER inbound, CLIENT_AND_SERVER (the default) both', () => {
    const { policy } = compile([
      telemetry(
        'ns',
        'default',
        `  metrics:
  - overrides:
    - match: {metric: REQUEST_DURATION, mode: CLIENT}
      disabled: true
    - match: {metric: REQUEST_SIZE, mode: SERVER}
      disabled: true
    - match: {metric: TCP_SENT_BYTES}
      disabled: true`,
      ),
    ])
    expect(istioMetrics.filter((m) => !enabled(policy, 'outbound').includes(m))).toEqual([
      'REQUEST_DURATION',
      'TCP_SENT_BYTES',
    ])
    expect(istioMetrics.filter((m) => !enabled(policy, 'inbound').includes(m))).toEqual([
      'REQUEST_SIZE',
      'TCP_SENT_BYTES',
    ])
  })

  it('ALL_METRICS disabled at the mesh is re-enabled by a later override of the workload (for its mode only)', () => {
    const mesh = telemetry('mesh', 'istio-system', ALL_OFF)
    const workload = telemetry(
      'wl',
      'default',
      '  metrics: [{overrides: [{match: {metric: REQUEST_COUNT, mode: SERVER}, disabled: false}]}]',
      '{app: reviews}',
    )
    const { policy } = compile([mesh, workload])
    expect(enabled(policy, 'inbound')).toEqual(istioMetrics)
    expect(enabled(policy, 'outbound')).toEqual([])
  })

  it('a metric disabled at the namespace stays off unless a lower level sets disabled: false', () => {
    const ns = telemetry(
      'ns',
      'default',
      '  metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]}]',
    )
    const tagsOnly = telemetry(
      'wl',
      'default',
      `  metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, tagOverrides: {team: {value: "'a'"}}}]}]`,
      '{app: reviews}',
    )
    expect(compile([ns, tagsOnly]).policy.inbound.metrics.REQUEST_COUNT.disabled).toBe(true)
    const reEnable = telemetry(
      'wl',
      'default',
      '  metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: false}]}]',
      '{app: reviews}',
    )
    expect(compile([ns, reEnable]).policy.inbound.metrics.REQUEST_COUNT.disabled).toBe(false)
  })

  it('tagOverrides accumulate across levels per tag, the narrower level winning, sorted by tag', () => {
    const { policy } = compile([
      telemetry(
        'mesh',
        'istio-system',
        `  metrics: [{overrides: [{tagOverrides: {team: {value: "'mesh'"}}}]}]`,
      ),
      telemetry(
        'ns',
        'default',
        '  metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, tagOverrides: {response_code: {operation: REMOVE}}}]}]',
      ),
      telemetry(
        'wl',
        'default',
        `  metrics: [{overrides: [{match: {metric: REQUEST_COUNT, mode: CLIENT}, tagOverrides: {team: {value: "'reviews'"}}}]}]`,
        '{app: reviews}',
      ),
    ])
    const expected = (team: string): MetricPolicy => ({
      disabled: false,
      tagOverrides: [
        { tag: 'response_code', operation: 'REMOVE', value: '' },
        { tag: 'team', operation: 'UPSERT', value: team },
      ],
    })
    expect(policy.outbound.metrics.REQUEST_COUNT).toEqual(expected('reviews'))
    expect(policy.inbound.metrics.REQUEST_COUNT).toEqual(expected('mesh'))
    expect(policy.inbound.metrics.TCP_OPENED_CONNECTIONS).toEqual({
      disabled: false,
      tagOverrides: [{ tag: 'team', operation: 'UPSERT', value: 'mesh' }],
    })
  })

  it('providers: only prometheus is built; a narrower level naming another provider turns the standard metrics off', () => {
    const { policy, warnings } = compile([
      telemetry(
        'mesh',
        'istio-system',
        '  metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]}]',
      ),
      telemetry('wl', 'default', '  metrics: [{providers: [{name: stackdriver}]}]', '{app: reviews}'),
    ])
    expect(enabled(policy, 'inbound')).toEqual([])
    expect(enabled(policy, 'outbound')).toEqual([])
    expect(warnings).toEqual([
      "t.yaml:12: warning: metrics provider 'stackdriver' is not built: only 'prometheus' is (its settings are ignored)",
      "t.yaml:12: warning: metrics providers do not include 'prometheus': Istio's standard metrics are off for this workload",
    ])
  })

  it('an override of a custom metric changes no standard metric, with a warning', () => {
    const { policy, warnings } = compile([
      telemetry(
        'ns',
        'default',
        '  metrics: [{overrides: [{match: {customMetric: my_metric}, disabled: true}]}]',
      ),
    ])
    expect(enabled(policy, 'inbound')).toEqual(istioMetrics)
    expect(warnings).toEqual([
      "t.yaml:5: warning: custom metric 'my_metric' is not built: this override changes no standard metric",
    ])
  })
})

describe('Telemetry tracing (Telemetries.Tracing)', () => {
  const withTracing = bootstrap({
    telemetry: { tracing: { otlpEndpoint: 'http://127.0.0.1:4318/v1/traces', samplingPercent: 1 } },
  })

  it('sampling, span reporting and custom tags replace the parent per mode; the bootstrap endpoint is the provider', () => {
    const { policy, warnings } = compile(
      [
        telemetry(
          'mesh',
          'istio-system',
          '  tracing: [{randomSamplingPercentage: 10, customTags: {zone: {literal: {value: eu}}}}]',
        ),
        telemetry(
          'wl',
          'default',
          `  tracing:
  - match: {mode: SERVER}
    providers: [{name: opentelemetry}]
    disableSpanReporting: true
    customTags: {user: {header: {name: x-user, defaultValue: anon}}}`,
          '{app: reviews}',
        ),
      ],
      withTracing,
    )
    expect(warnings).toEqual([])
    expect(policy.outbound.tracing).toEqual({
      otlpEndpoint: 'http://127.0.0.1:4318/v1/traces',
      samplingPercent: 10,
      propagation: ['W3C', 'B3'],
      customTags: [{ tag: 'zone', kind: 'literal', value: 'eu' }],
      disableSpanReporting: false,
    })
    expect(policy.inbound.tracing).toEqual({
      otlpEndpoint: 'http://127.0.0.1:4318/v1/traces',
      samplingPercent: 10,
      propagation: ['W3C', 'B3'],
      customTags: [{ tag: 'user', kind: 'header', name: 'x-user', defaultValue: 'anon' }],
      disableSpanReporting: true,
    })
  })

  it('a provider that is not defined turns tracing off where it applies, with a warning', () => {
    const { policy, warnings } = compile(
      [telemetry('ns', 'default', '  tracing: [{match: {mode: CLIENT}, providers: [{name: zipkin}]}]')],
      withTracing,
    )
    expect(policy.outbound.tracing).toBeUndefined()
    expect(policy.inbound.tracing?.samplingPercent).toBe(1)
    expect(warnings).toEqual([
      "t.yaml:5: warning: tracing provider 'zipkin' is not defined: the one tracing provider is 'opentelemetry' (the bootstrap's telemetry.tracing), so tracing is off where this applies",
    ])
  })

  it('without a bootstrap tracing endpoint tracing stays off, with a warning', () => {
    const { policy, warnings } = compile([
      telemetry('ns', 'default', '  tracing: [{randomSamplingPercentage: 100}]'),
    ])
    expect(policy.inbound.tracing).toBeUndefined()
    expect(policy.outbound.tracing).toBeUndefined()
    expect(warnings).toEqual([
      "t.yaml:5: warning: tracing is off: the bootstrap has no telemetry.tracing endpoint (the 'opentelemetry' provider)",
    ])
  })
})

describe('Telemetry access logging (mergeLogs)', () => {
  const withLog = bootstrap({ telemetry: { accessLog: { path: '/tmp/access.log', encoding: 'JSON' } } })

  it("the bootstrap's accessLog is the default envoy provider: a namespace turns it off, a workload on again for SERVER with a filter", () => {
    const off = telemetry('ns', 'default', '  accessLogging: [{disabled: true}]')
    expect(compile([off], withLog).policy.inbound.accessLog).toBeUndefined()
    const { policy } = compile(
      [
        off,
        telemetry(
          'wl',
          'default',
          `  accessLogging:
  - match: {mode: SERVER}
    providers: [{name: envoy}]
    disabled: false
    filter: {expression: response.code >= 400}`,
          '{app: reviews}',
        ),
      ],
      withLog,
    )
    expect(policy.inbound.accessLog).toMatchObject({
      path: '/tmp/access.log',
      encoding: 'JSON',
      filter: { expression: 'response.code >= 400', root: expect.any(Object) },
    })
    expect(policy.outbound.accessLog).toBeUndefined()
  })

  it('naming the envoy provider turns the log on without a bootstrap accessLog: /dev/stdout, TEXT', () => {
    const { policy } = compile([
      telemetry('mesh', 'istio-system', '  accessLogging: [{providers: [{name: envoy}]}]'),
    ])
    expect(policy.inbound.accessLog).toEqual({ path: '/dev/stdout', encoding: 'TEXT', filter: undefined })
    expect(policy.outbound.accessLog).toEqual(policy.inbound.accessLog)
  })

  it('another provider is warned of and puts envoy out of scope; a filter without providers is warned of', () => {
    const { policy, warnings } = compile(
      [
        telemetry(
          'ns',
          'default',
          `  accessLogging:
  - providers: [{name: otel}]
  - filter: {expression: 'response.code >= 500'}`,
        ),
      ],
      withLog,
    )
    expect(policy.inbound.accessLog).toBeUndefined()
    expect(warnings).toEqual([
      "t.yaml:6: warning: access log provider 'otel' is not built: only 'envoy' (the bootstrap's accessLog, else /dev/stdout TEXT) is",
      't.yaml:7: warning: this filter is not applied: Istio keeps a filter only for the providers its entry names (add providers: [{name: envoy}])',
    ])
  })
})
