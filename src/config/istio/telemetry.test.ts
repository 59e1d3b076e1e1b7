// Telemetry parsing (istio/api telemetry/v1alpha1/telemetry.proto, Istio's ValidateTelemetry): fields, defaults, `file:line` errors and warnings.

import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { TelemetryResource } from '../resource.ts'
import { celStringLiteral } from './telemetry.ts'

function load(yaml: string) {
  const parsed = parseResources(yaml, 't.yaml', 'default')
  return {
    resources: parsed.resources as TelemetryResource[],
    messages: parsed.messages.map(formatMessage),
  }
}

const telemetry = (spec: string, apiVersion = 'telemetry.istio.io/v1') => `apiVersion: ${apiVersion}
kind: Telemetry
metadata: {name: t, namespace: default}
spec:
${spec}
`

describe('Telemetry parsing', () => {
  it('reads every supported field, with istio/api defaults, in v1 and v1alpha1', () => {
    const spec = `  selector: {matchLabels: {app: reviews}}
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT}
      disabled: true
      tagOverrides:
        request_protocol: {operation: REMOVE}
        version: {value: "'v1'"}
    - tagOverrides:
        team: {operation: UPSERT, value: '"payments"'}
  tracing:
  - match: {mode: SERVER}
    providers: [{name: opentelemetry}]
    randomSamplingPercentage: 12.5
    disableSpanReporting: false
    customTags:
      zone: {literal: {value: eu}}
      pod: {environment: {name: POD_NAME, defaultValue: none}}
      user: {header: {name: x-user}}
  accessLogging:
  - match: {mode: CLIENT}
    providers: [{name: envoy}]
    disabled: false
    filter: {expression: 'response.code >= 400'}`
    for (const apiVersion of ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1']) {
      const { resources, messages } = load(telemetry(spec, apiVersion))
      expect(messages).toEqual([])
      const [r] = resources
      expect(r.kind).toBe('Telemetry')
      expect(r.spec.selector).toEqual({ matchLabels: { app: 'reviews' } })
      expect(r.spec.metrics).toEqual([
        {
          providers: [{ name: 'prometheus' }],
          overrides: [
            {
              match: { metric: 'REQUEST_COUNT', mode: 'CLIENT' },
              disabled: true,
              tagOverrides: {
                request_protocol: { operation: 'REMOVE', value: '' },
                version: { operation: 'UPSERT', value: 'v1' },
              },
            },
            { tagOverrides: { team: { operation: 'UPSERT', value: 'payments' } } },
          ],
        },
      ])
      expect(r.spec.tracing).toEqual([
        {
          match: { mode: 'SERVER' },
          providers: [{ name: 'opentelemetry' }],
          randomSamplingPercentage: 12.5,
          disableSpanReporting: false,
          customTags: {
            zone: { literal: { value: 'eu' } },
            pod: { environment: { name: 'POD_NAME', defaultValue: 'none' } },
            user: { header: { name: 'x-user', defaultValue: '' } },
          },
        },
      ])
      expect(r.spec.accessLogging).toEqual([
        {
          match: { mode: 'CLIENT' },
          providers: [{ name: 'envoy' }],
          disabled: false,
          filter: { expression: 'response.code >= 400' },
        },
      ])
    }
  })

  it('defaults an empty spec to no selector and empty lists, and a match mode to CLIENT_AND_SERVER', () => {
    const { resources, messages } = load(
      telemetry('  metrics: [{overrides: [{match: {metric: ALL_METRICS}, disabled: true}]}]'),
    )
    expect(messages).toEqual([])
    expect(resources[0].spec).toEqual({
      tracing: [],
      accessLogging: [],
      metrics: [
        {
          providers: [],
          overrides: [
            { match: { metric: 'ALL_METRICS', mode: 'CLIENT_AND_SERVER' }, disabled: true, tagOverrides: {} },
          ],
        },
      ],
    })
  })

  it('reports wrong values at their line, as Istio validates them', () => {
    const { resources, messages } = load(
      telemetry(`  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNTS}
    - tagOverrides:
        a: {operation: UPSERT}
        b: {operation: REMOVE, value: "'x'"}
    - match: {metric: REQUEST_COUNT, customMetric: mine}
  tracing:
  - randomSamplingPercentage: 101
    customTags:
      t: {literal: {value: a}, header: {name: x}}
  accessLogging:
  - providers: [{name: ''}]
    match: {mode: BOTH}
  - providers: [{name: envoy}]
    filter: {expression: "response.duration > duration('1s')"}`),
    )
    expect(resources).toEqual([])
    expect(messages).toEqual([
      't.yaml:7: field \'spec.metrics[0].overrides[0].match.metric\': invalid value "REQUEST_COUNTS", expected one of ALL_METRICS, REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, RESPONSE_SIZE, GRPC_REQUEST_MESSAGES, GRPC_RESPONSE_MESSAGES, TCP_SENT_BYTES, TCP_RECEIVED_BYTES, TCP_OPENED_CONNECTIONS, TCP_CLOSED_CONNECTIONS',
      "t.yaml:9: field 'spec.metrics[0].overrides[1].tagOverrides.a.value': tagOverrides.value must be set when operation is UPSERT",
      "t.yaml:10: field 'spec.metrics[0].overrides[1].tagOverrides.b.value': tagOverrides.value may only be set when operation is UPSERT",
      "t.yaml:11: field 'spec.metrics[0].overrides[2].match': only one of metric or customMetric can be set",
      "t.yaml:13: field 'spec.tracing[0].randomSamplingPercentage': randomSamplingPercentage must be in range [0.0, 100.0]",
      "t.yaml:15: field 'spec.tracing[0].customTags.t': only one of literal, environment or header can be set",
      "t.yaml:17: field 'spec.accessLogging[0].providers[0].name': providers.name may not be empty",
      't.yaml:18: field \'spec.accessLogging[0].match.mode\': invalid value "BOTH", expected one of CLIENT_AND_SERVER, CLIENT, SERVER',
      expect.stringMatching(
        /^t\.yaml:20: field 'spec\.accessLogging\[1\]\.filter\.expression': access log filter not supported: /,
      ),
    ])
  })

  it('warns by name about fields it does not implement, and drops a tag override whose value is not a literal', () => {
    const { resources, messages } = load(
      telemetry(`  metrics:
  - reportingInterval: 10s
    overrides:
    - tagOverrides:
        request_host: {value: request.host}
        kept: {value: "'yes'"}
  tracing:
  - useRequestIdForTraceSampling: false
    enableIstioTags: false`),
    )
    expect(messages).toEqual([
      "t.yaml:6: warning: field 'spec.metrics[0].reportingInterval' is not supported yet and is ignored",
      "t.yaml:9: warning: field 'spec.metrics[0].overrides[0].tagOverrides.request_host' is a CEL expression ('request.host'): only string literals (such as \"'v1'\") are supported yet, so this tag override is ignored",
      "t.yaml:12: warning: field 'spec.tracing[0].useRequestIdForTraceSampling' is not supported yet and is ignored",
      "t.yaml:13: warning: field 'spec.tracing[0].enableIstioTags' is not supported yet and is ignored",
    ])
    expect(resources[0].spec.metrics[0].overrides[0].tagOverrides).toEqual({
      kept: { operation: 'UPSERT', value: 'yes' },
    })
    expect(resources[0].spec.tracing[0]).toEqual({ providers: [] })
  })

  it('refuses a selector together with targetRefs, and keeps targetRefs (a targeted Telemetry is not namespace-wide)', () => {
    const both = load(
      telemetry(
        '  selector: {matchLabels: {app: a}}\n  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]',
      ),
    )
    expect(both.messages).toEqual([
      "t.yaml:4: field 'spec': only one of selector, targetRef or targetRefs can be set",
    ])
    const targeted = load(
      telemetry('  targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: gw}'),
    )
    expect(targeted.messages).toEqual([])
    expect(targeted.resources[0].spec.targetRef).toEqual({
      kind: 'Gateway',
      group: 'gateway.networking.k8s.io',
      name: 'gw',
    })
  })

  it('needs apiVersion telemetry.istio.io', () => {
    const { messages } = load(telemetry('  tracing: []', 'networking.istio.io/v1'))
    expect(messages).toEqual([
      "t.yaml:1: apiVersion 'networking.istio.io/v1' is not valid for kind Telemetry (expected one of telemetry.istio.io/v1, telemetry.istio.io/v1alpha1)",
    ])
  })
})

describe('celStringLiteral', () => {
  it('reads single- and double-quoted CEL string literals and nothing else', () => {
    expect(celStringLiteral("'v1'")).toBe('v1')
    expect(celStringLiteral(' "a b" ')).toBe('a b')
    expect(celStringLiteral("''")).toBe('')
    expect(celStringLiteral('request.host')).toBeUndefined()
    expect(celStringLiteral("'a' + 'b'")).toBeUndefined()
    expect(celStringLiteral("'it\\'s'")).toBeUndefined()
    expect(celStringLiteral('v1')).toBeUndefined()
  })
})
