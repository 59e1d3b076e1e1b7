import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { SidecarResource } from '../resource.ts'

/** Lines 1–5; the spec's first line is line 6. */
const HEADER = 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: reviews\nspec:\n'

function load(spec: string) {
  const parsed = parseResources(HEADER + spec, 'sidecar.yaml', 'default')
  return { resources: parsed.resources as SidecarResource[], messages: parsed.messages.map(formatMessage) }
}

describe('Sidecar', () => {
  it('reads ingress and egress listeners with defaults', () => {
    const { resources, messages } = load(`  workloadSelector:
    labels: {app: reviews}
  ingress:
  - port: {number: 9080, protocol: http, name: http}
    defaultEndpoint: 127.0.0.1:8080
  egress:
  - port: {number: 9081, protocol: HTTP}
    bind: 127.0.0.1
    hosts: [./ratings.default.svc.cluster.local, "istio-system/*"]
  - hosts: ["*/*"]
  outboundTrafficPolicy: {}
`)
    expect(messages).toEqual([])
    expect(resources[0].spec).toEqual({
      workloadSelector: { labels: { app: 'reviews' } },
      ingress: [
        {
          port: { number: 9080, protocol: 'HTTP', name: 'http' },
          captureMode: 'DEFAULT',
          defaultEndpoint: '127.0.0.1:8080',
        },
      ],
      egress: [
        {
          port: { number: 9081, protocol: 'HTTP' },
          bind: '127.0.0.1',
          captureMode: 'DEFAULT',
          hosts: ['./ratings.default.svc.cluster.local', 'istio-system/*'],
        },
        { captureMode: 'DEFAULT', hosts: ['*/*'] },
      ],
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
    })
  })

  it('checks egress hosts as namespace/dnsName', () => {
    const { messages } = load(`  egress:
  - port: {number: 81}
    hosts:
    - ratings.default.svc.cluster.local
    - /ratings.example.com
    - Bad_NS/a.example.com
    - ./ratings
  - port: {number: 80}
    hosts: []
`)
    expect(messages).toEqual([
      "sidecar.yaml:9: field 'spec.egress[0].hosts[0]': host 'ratings.default.svc.cluster.local' must be of form namespace/dnsName",
      "sidecar.yaml:10: field 'spec.egress[0].hosts[1]': namespace and dnsName in host '/ratings.example.com' cannot be empty",
      "sidecar.yaml:11: field 'spec.egress[0].hosts[2]': invalid namespace value 'Bad_NS' in host 'Bad_NS/a.example.com'",
      "sidecar.yaml:12: field 'spec.egress[0].hosts[3]': host './ratings': short names (non FQDN) are not allowed",
      "sidecar.yaml:14: field 'spec.egress[1].hosts': egress listener must contain at least one host",
    ])
  })

  it('requires egress hosts and an ingress port', () => {
    const { messages } = load(`  ingress:
  - defaultEndpoint: 127.0.0.1:8080
  egress:
  - port: {number: 80}
`)
    expect(messages).toEqual([
      "sidecar.yaml:7: missing required field 'spec.ingress[0].port'",
      "sidecar.yaml:9: missing required field 'spec.egress[0].hosts'",
    ])
  })

  it('checks ports, binds and default endpoints', () => {
    const { messages } = load(`  ingress:
  - port: {number: 0}
  - port: {number: 9080}
    bind: localhost
    defaultEndpoint: 10.0.0.1:8080
  - port: {number: 9081}
    defaultEndpoint: "127.0.0.1:http"
`)
    expect(messages).toEqual([
      "sidecar.yaml:7: field 'spec.ingress[0].port.number': port number 0 must be in the range 1..65535",
      "sidecar.yaml:9: field 'spec.ingress[1].bind': 'localhost' is not a valid IP address",
      "sidecar.yaml:10: field 'spec.ingress[1].defaultEndpoint': defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, unix://<path> or unset",
      "sidecar.yaml:12: field 'spec.ingress[2].defaultEndpoint': defaultEndpoint port 'http' must be a number in the range 1..65535",
    ])
  })

  it('rejects two listeners on one port and a catch-all egress that is not last', () => {
    const { messages } = load(`  ingress:
  - port: {number: 9080}
  - port: {number: 9080}
  egress:
  - hosts: ["*/*"]
  - port: {number: 80}
    hosts: ["*/*"]
`)
    expect(messages).toEqual([
      "sidecar.yaml:8: field 'spec.ingress[1].port.number': ingress port 9080 is already used by another ingress listener",
      "sidecar.yaml:10: field 'spec.egress[0]': the egress listener without a port (the catch-all) must be the last one",
    ])
  })

  it('rejects an empty sidecar', () => {
    expect(load('  workloadSelector: {labels: {app: a}}\n').messages).toEqual([
      "sidecar.yaml:5: field 'spec': sidecar must configure ingress, egress or outboundTrafficPolicy",
    ])
  })

  it('warns about connection pools', () => {
    const { resources, messages } = load(`  ingress:
  - port: {number: 9080}
    connectionPool: {tcp: {maxConnections: 1}}
  inboundConnectionPool: {http: {http1MaxPendingRequests: 1}}
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy: {host: proxy.example.com}
`)
    expect(messages).toEqual([
      "sidecar.yaml:8: warning: field 'spec.ingress[0].connectionPool' is not supported yet and is ignored",
      "sidecar.yaml:9: warning: field 'spec.inboundConnectionPool' is not supported yet and is ignored",
      "sidecar.yaml:12: warning: field 'spec.outboundTrafficPolicy.egressProxy' is not supported yet and is ignored",
    ])
    expect(resources[0].spec.outboundTrafficPolicy).toEqual({ mode: 'ALLOW_ANY' })
  })

  it('rejects outbound traffic policy modes Istio does not define', () => {
    expect(load('  outboundTrafficPolicy: {mode: ALLOW_ALL}\n').messages).toEqual([
      `sidecar.yaml:6: field 'spec.outboundTrafficPolicy.mode': invalid value "ALLOW_ALL", expected one of REGISTRY_ONLY, ALLOW_ANY`,
    ])
  })
})
