import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { ServiceEntryResource } from '../resource.ts'

/** Lines 1–5; the spec's first line is line 6. */
const HEADER = 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: reviews\nspec:\n'

function load(spec: string) {
  const parsed = parseResources(HEADER + spec, 'se.yaml', 'default')
  return {
    resources: parsed.resources as ServiceEntryResource[],
    messages: parsed.messages.map(formatMessage),
  }
}

describe('ServiceEntry', () => {
  it('applies Istio defaults and uppercases protocols', () => {
    const { resources, messages } = load(`  hosts: [reviews.example.com]
  ports:
  - {number: 9080, name: http, protocol: http}
  endpoints: []
`)
    expect(messages).toEqual([])
    expect(resources[0].spec).toEqual({
      hosts: ['reviews.example.com'],
      addresses: [],
      ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
      location: 'MESH_EXTERNAL',
      resolution: 'NONE',
      subjectAltNames: [],
      endpoints: [],
      exportTo: [],
    })
  })

  it('reads endpoints with their ports, labels and weights', () => {
    const { resources, messages } = load(`  hosts: [reviews.example.com]
  ports:
  - {number: 9080, name: http, protocol: HTTP, targetPort: 8080}
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
    ports: {http: 19080}
    labels: {version: v1}
    weight: 3
    locality: us-east/a
    network: n1
    serviceAccount: reviews
  - address: unix:///var/run/app.sock
`)
    expect(messages).toEqual([
      "se.yaml:17: warning: field 'spec.endpoints[0].network' is not supported yet and is ignored",
    ])
    expect(resources[0].spec.endpoints).toEqual([
      {
        address: '10.0.0.1',
        ports: { http: 19080 },
        labels: { version: 'v1' },
        weight: 3,
        locality: 'us-east/a',
        serviceAccount: 'reviews',
      },
      { address: 'unix:///var/run/app.sock', ports: {}, labels: {} },
    ])
  })

  it('requires hosts, at the line of the enclosing object', () => {
    expect(load('  resolution: DNS\n').messages).toEqual(["se.yaml:5: missing required field 'spec.hosts'"])
  })

  it('requires at least one host', () => {
    expect(load('  hosts: []\n').messages).toEqual([
      "se.yaml:6: field 'spec.hosts': service entry must have at least one host",
    ])
  })

  it('rejects malformed hosts', () => {
    expect(load('  hosts: ["*", bad_host.example.com]\n').messages).toEqual([
      "se.yaml:6: field 'spec.hosts[0]': invalid host *",
      "se.yaml:6: field 'spec.hosts[1]': domain name 'bad_host.example.com' invalid (label 'bad_host' invalid)",
    ])
  })

  it('checks port numbers, protocols and names', () => {
    const { messages } = load(`  hosts: [a.example.com]
  ports:
  - number: 70000
    name: http
  - number: 80
    name: Not_A_Name
    protocol: SPDY
  - number: 81
`)
    expect(messages).toEqual([
      "se.yaml:8: field 'spec.ports[0].number': port number 70000 must be in the range 1..65535",
      "se.yaml:11: field 'spec.ports[1].name': invalid port name 'Not_A_Name'",
      "se.yaml:12: field 'spec.ports[1].protocol': unsupported protocol 'SPDY' (expected one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, HTTP_PROXY, TCP, TLS, UDP, MONGO, REDIS, MYSQL)",
      "se.yaml:13: missing required field 'spec.ports[2].name'",
    ])
  })

  it('rejects a port given as a string', () => {
    expect(load('  hosts: [a.example.com]\n  ports:\n  - {number: "80", name: http}\n').messages).toEqual([
      `se.yaml:8: field 'spec.ports[0].number': expected a number, got string "80"`,
    ])
  })

  it('rejects duplicate port names and numbers', () => {
    const { messages } = load(`  hosts: [a.example.com]
  ports:
  - {number: 80, name: http}
  - {number: 80, name: http}
`)
    expect(messages).toEqual([
      "se.yaml:9: field 'spec.ports[1].name': port name 'http' already defined",
      "se.yaml:9: field 'spec.ports[1].number': port 80 already defined",
    ])
  })

  it('names unknown fields at their own line', () => {
    const { messages } = load(`  hosts: [a.example.com]
  ports:
  - number: 80
    name: http
    portName: web
  resolutoin: DNS
`)
    expect(messages).toEqual([
      "se.yaml:10: unknown field 'spec.ports[0].portName'",
      "se.yaml:11: unknown field 'spec.resolutoin'",
    ])
  })

  it('rejects enum values Istio does not define', () => {
    expect(load('  hosts: [a.example.com]\n  resolution: dns\n').messages).toEqual([
      `se.yaml:7: field 'spec.resolution': invalid value "dns", expected one of NONE, STATIC, DNS, DNS_ROUND_ROBIN`,
    ])
  })

  it('applies the resolution rules for endpoints', () => {
    expect(load('  hosts: [a.example.com]\n  endpoints:\n  - address: 10.0.0.1\n').messages).toEqual([
      "se.yaml:7: field 'spec.endpoints': no endpoints should be provided for resolution type NONE",
    ])
    expect(
      load('  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints:\n  - address: db.example.com\n')
        .messages,
    ).toEqual([
      "se.yaml:9: field 'spec.endpoints[0].address': endpoint address 'db.example.com' is not a valid IP address (resolution STATIC)",
    ])
    expect(
      load(
        '  hosts: [a.example.com]\n  resolution: DNS_ROUND_ROBIN\n  endpoints:\n  - address: a.b\n  - address: c.d\n',
      ).messages,
    ).toEqual([
      "se.yaml:8: field 'spec.endpoints': there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
    ])
    expect(load('  hosts: [a.example.com]\n  resolution: DNS\n  addresses: [10.0.0.0/8]\n').messages).toEqual(
      [
        "se.yaml:8: field 'spec.addresses[0]': CIDR addresses are allowed only for NONE/STATIC resolution types",
      ],
    )
  })

  it('rejects endpoint ports that the service does not declare', () => {
    const { messages } = load(`  hosts: [a.example.com]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
    ports: {grpc: 9000}
`)
    expect(messages).toEqual([
      "se.yaml:11: field 'spec.endpoints[0].ports.grpc': endpoint port 'grpc' is not defined by the service entry's ports",
    ])
  })

  it('rejects addresses that are not IPs or CIDR blocks', () => {
    expect(load('  hosts: [a.example.com]\n  addresses: [10.0.0.300, 10.0.0.0/40]\n').messages).toEqual([
      "se.yaml:7: field 'spec.addresses[0]': '10.0.0.300' is not a valid IP address or CIDR block",
      "se.yaml:7: field 'spec.addresses[1]': '10.0.0.0/40' is not a valid IP address or CIDR block",
    ])
  })

  it('warns about workloadSelector and leaves it out; keeps subjectAltNames (ISTIO_MUTUAL checks them)', () => {
    const { resources, messages } = load(`  hosts: [a.example.com]
  workloadSelector:
    labels: {app: a}
  subjectAltNames: [spiffe://cluster.local/ns/default/sa/a]
`)
    expect(messages).toEqual([
      "se.yaml:7: warning: field 'spec.workloadSelector' is not supported yet and is ignored",
    ])
    expect(resources).toHaveLength(1)
    expect(resources[0].spec).not.toHaveProperty('workloadSelector')
    expect(resources[0].spec).toHaveProperty('subjectAltNames', ['spiffe://cluster.local/ns/default/sa/a'])
  })
})
