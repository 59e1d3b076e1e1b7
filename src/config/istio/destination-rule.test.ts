import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { DestinationRuleResource } from '../resource.ts'

/** Lines 1–5; the spec's first line is line 6. */
const HEADER =
  'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n'

function load(spec: string) {
  const parsed = parseResources(HEADER + spec, 'dr.yaml', 'default')
  return {
    resources: parsed.resources as DestinationRuleResource[],
    messages: parsed.messages.map(formatMessage),
  }
}

describe('DestinationRule', () => {
  it('reads subsets with their labels', () => {
    const { resources, messages } = load(`  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
`)
    expect(messages).toEqual([])
    expect(resources[0].spec).toEqual({
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: {} },
      ],
      exportTo: [],
    })
  })

  it('reads traffic policies, warning about the fields not supported yet', () => {
    const { resources, messages } = load(`  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
      localityLbSetting: {enabled: true}
    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 250ms, tcpKeepalive: {time: 60s, probes: 3}}
      http: {http1MaxPendingRequests: 2, maxRequestsPerConnection: 1, h2UpgradePolicy: UPGRADE}
    tls: {mode: ISTIO_MUTUAL}
    retryBudget: {percent: 25}
  subsets:
  - name: v1
    trafficPolicy:
      outlierDetection: {consecutive5xxErrors: 3, interval: 1s}
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer:
          consistentHash:
            httpCookie: {name: user, ttl: 0s}
            maglev: {tableSize: 65537}
  workloadSelector:
    matchLabels: {app: a}
`)
    expect(messages).toEqual([
      "dr.yaml:12: warning: field 'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probes' is not supported yet and is ignored",
      "dr.yaml:26: warning: field 'spec.workloadSelector' is not supported yet and is ignored",
    ])
    expect(resources[0].spec).toEqual({
      host: 'reviews',
      trafficPolicy: {
        loadBalancer: {
          simple: 'LEAST_REQUEST',
          localityLbSetting: { enabled: true, distribute: [], failover: [], failoverPriority: [] },
        },
        connectionPool: {
          tcp: { maxConnections: 10, connectTimeout: '250ms', tcpKeepalive: { time: '60s' } },
          http: { http1MaxPendingRequests: 2, maxRequestsPerConnection: 1, h2UpgradePolicy: 'UPGRADE' },
        },
        tls: { mode: 'ISTIO_MUTUAL' },
        portLevelSettings: [],
        retryBudget: { percent: 25 },
      },
      subsets: [
        {
          name: 'v1',
          labels: {},
          trafficPolicy: {
            outlierDetection: {
              consecutive5xxErrors: 3,
              interval: '1s',
              splitExternalLocalOriginErrors: false,
              outlierDetectionHttpErrorCodes: [],
            },
            portLevelSettings: [
              {
                port: { number: 9080 },
                loadBalancer: {
                  consistentHash: {
                    httpCookie: { name: 'user', ttl: '0s', attributes: [] },
                    maglev: { tableSize: 65537 },
                  },
                },
              },
            ],
          },
        },
      ],
      exportTo: [],
    })
  })

  it('keeps PASSTHROUGH (compile warns when there is no capture), and warns that consecutiveErrors is deprecated', () => {
    const { resources, messages } = load(`  host: reviews
  trafficPolicy:
    loadBalancer: {simple: PASSTHROUGH}
    outlierDetection: {consecutiveErrors: 7}
`)
    expect(messages).toEqual([
      "dr.yaml:9: warning: field 'spec.trafficPolicy.outlierDetection.consecutiveErrors' is deprecated and ignored: use consecutiveGatewayErrors or consecutive5xxErrors instead",
    ])
    expect(resources[0].spec.trafficPolicy?.loadBalancer).toEqual({ simple: 'PASSTHROUGH' })
  })

  it('validates traffic policy values as Istio does', () => {
    const { messages } = load(`  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      consistentHash:
        httpHeaderName: x-user
        useSourceIp: true
        ringHash: {}
        maglev: {tableSize: 1000}
    connectionPool:
      tcp: {maxConnections: -1, connectTimeout: 0s}
      http: {http2MaxRequests: 1.5}
    outlierDetection:
      consecutiveLocalOriginFailures: 3
      maxEjectionPercent: 120
      baseEjectionTime: 1.5ms
    portLevelSettings:
    - loadBalancer: {simple: RANDOM}
    - port: {number: 80}
      loadBalancer:
        consistentHash: {httpCookie: {name: ""}}
`)
    expect(messages).toEqual([
      "dr.yaml:10: field 'spec.trafficPolicy.loadBalancer.consistentHash': loadBalancer may only specify one of simple or consistentHash",
      "dr.yaml:12: field 'spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp': consistentHash may only specify one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
      "dr.yaml:14: field 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize': tableSize must be a prime number less than 5000011 for maglev",
      "dr.yaml:14: field 'spec.trafficPolicy.loadBalancer.consistentHash.maglev': consistentHash may only specify one of ringHash or maglev",
      "dr.yaml:16: field 'spec.trafficPolicy.connectionPool.tcp.maxConnections': max connections must be non-negative",
      "dr.yaml:16: field 'spec.trafficPolicy.connectionPool.tcp.connectTimeout': duration '0s' must be at least 1ms",
      "dr.yaml:17: field 'spec.trafficPolicy.connectionPool.http.http2MaxRequests': expected an integer, got 1.5",
      "dr.yaml:19: field 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures': outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
      "dr.yaml:20: field 'spec.trafficPolicy.outlierDetection.maxEjectionPercent': percentage 120 is not in range 0..100",
      "dr.yaml:21: field 'spec.trafficPolicy.outlierDetection.baseEjectionTime': duration '1.5ms': only durations to ms precision are supported",
      "dr.yaml:23: missing required field 'spec.trafficPolicy.portLevelSettings[0].port'",
      "dr.yaml:26: field 'spec.trafficPolicy.portLevelSettings[1].loadBalancer.consistentHash.httpCookie.name': name required for HttpCookie",
      "dr.yaml:26: field 'spec.trafficPolicy.portLevelSettings[1].loadBalancer.consistentHash.httpCookie': ttl required for HttpCookie",
    ])
  })

  it('validates localityLbSetting as Istio does', () => {
    const { messages } = load(`  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - {from: "us-east/*/r1", to: {"us-west/*": 60, "us-west/a": 30}}
        - {from: us-east/a, to: {"us-west/*": 0}}
  subsets:
  - name: v1
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          distribute: [{from: "*", to: {"*": 100}}]
          failover: [{from: a, to: b}]
  - name: v2
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          failover: [{from: us-east, to: us-east}, {from: us-east/a, to: "eu-*"}]
          failoverPriority: [topology.kubernetes.io/zone]
  - name: v3
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          failover: [{from: us-east, to: eu-west}]
`)
    expect(messages).toEqual([
      "dr.yaml:10: field 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute': locality us-east/*/r1 wildcard '*' number can not exceed 1 and must be in the end",
      "dr.yaml:11: field 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to': total locality weight 90 != 100",
      "dr.yaml:11: field 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to': locality us-west/a overlap with previous specified ones",
      "dr.yaml:12: field 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[1].to': locality weight must be in range [1, 100]",
      "dr.yaml:17: field 'spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting': can not simultaneously specify 'distribute' and 'failover'",
      "dr.yaml:23: field 'spec.subsets[1].trafficPolicy.loadBalancer.localityLbSetting': can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/zone' in 'failover_priority'",
    ])
    expect(
      load(`  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        failover: [{from: us-east, to: us-east}, {from: us-east/a, to: "eu-*"}]
`).messages,
    ).toEqual([
      "dr.yaml:10: field 'spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]': locality lb failover settings must specify different regions",
      "dr.yaml:10: field 'spec.trafficPolicy.loadBalancer.localityLbSetting.failover[1]': locality lb failover only specify region",
      "dr.yaml:10: field 'spec.trafficPolicy.loadBalancer.localityLbSetting.failover[1]': locality lb failover region should not contain '*' wildcard",
    ])
  })

  it('reads warmup, rejecting both forms at once and warning where it has no effect', () => {
    const { resources, messages } = load(`  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      warmup: {duration: 30s, minimumPercent: 20, aggression: 2}
  subsets:
  - name: v1
    trafficPolicy:
      loadBalancer: {simple: RANDOM, warmupDurationSecs: 10s}
`)
    expect(messages).toEqual([
      "dr.yaml:14: warning: field 'spec.subsets[0].trafficPolicy.loadBalancer.warmupDurationSecs' has no effect: warmup applies to ROUND_ROBIN and LEAST_REQUEST only",
    ])
    expect(resources[0].spec.trafficPolicy?.loadBalancer?.warmup).toEqual({
      duration: '30s',
      minimumPercent: 20,
      aggression: 2,
    })
    expect(
      load(`  host: reviews
  trafficPolicy:
    loadBalancer: {warmupDurationSecs: 10s, warmup: {duration: 10s, minimumPercent: 101}}
`).messages,
    ).toEqual([
      "dr.yaml:8: field 'spec.trafficPolicy.loadBalancer.warmup.minimumPercent': minimumPercent 101 is not in range 0..100",
      "dr.yaml:8: field 'spec.trafficPolicy.loadBalancer.warmup': only one of warmupDurationSecs or warmup can be set",
    ])
  })

  it('rejects unknown fields inside a traffic policy', () => {
    expect(load('  host: reviews\n  trafficPolicy:\n    loadBalancing: {}\n').messages).toEqual([
      "dr.yaml:8: unknown field 'spec.trafficPolicy.loadBalancing'",
    ])
  })

  it('requires a host', () => {
    expect(load('  subsets: []\n').messages).toEqual(["dr.yaml:5: missing required field 'spec.host'"])
  })

  it('requires valid subset names', () => {
    const { messages } = load(`  host: reviews
  subsets:
  - name: v_2
  - labels: {version: v3}
`)
    expect(messages).toEqual([
      "dr.yaml:8: field 'spec.subsets[0].name': subset name is invalid: 'v_2'",
      "dr.yaml:9: missing required field 'spec.subsets[1].name'",
    ])
  })

  it('requires unique subset names', () => {
    expect(load('  host: reviews\n  subsets:\n  - name: v1\n  - name: v1\n').messages).toEqual([
      "dr.yaml:9: field 'spec.subsets[1].name': duplicate subset names: v1",
    ])
  })

  it('rejects labels that are not strings', () => {
    expect(load('  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: 1}\n').messages).toEqual([
      "dr.yaml:9: field 'spec.subsets[0].labels.version': expected a string, got number 1",
    ])
  })
})
