import { describe, expect, it } from 'vitest'
import {
  defaultRetryPolicy,
  parseRetryOn,
  RetryOn,
  retriableFailure,
  retriableResponse,
} from '../../route/retry-policy.ts'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { VirtualServiceResource } from '../resource.ts'

/** Lines 1–6; the first HTTP route starts on line 7. */
const HEADER =
  'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n'

function load(spec: string) {
  const parsed = parseResources(HEADER + spec, 'vs.yaml', 'default')
  return {
    resources: parsed.resources as VirtualServiceResource[],
    messages: parsed.messages.map(formatMessage),
  }
}

const ROUTE = '    route:\n    - destination: {host: reviews}\n'

describe('VirtualService', () => {
  it('reads matches, weighted routes, rewrites, timeouts and header edits with defaults', () => {
    const { resources, messages } = load(`  http:
  - name: v2-for-jason
    match:
    - uri: {prefix: /reviews}
      headers:
        end-user: {exact: jason}
        x-present: {}
      queryParams:
        debug: {regex: "^(1|true)$"}
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      weight: 90
      headers:
        request:
          set: {x-route: v2}
    - destination: {host: reviews, subset: v1}
      weight: 10
    rewrite: {uri: /}
    timeout: 0.5s
    headers:
      response:
        remove: [x-internal]
`)
    expect(messages).toEqual([])
    const [http] = resources[0].spec.http
    expect(resources[0].spec.gateways).toEqual([])
    expect(resources[0].spec.exportTo).toEqual([])
    expect(http.name).toBe('v2-for-jason')
    expect(http.match[0]).toEqual({
      uri: { prefix: '/reviews' },
      headers: { 'end-user': { exact: 'jason' }, 'x-present': {} },
      withoutHeaders: {},
      queryParams: { debug: { regex: '^(1|true)$' } },
      sourceLabels: {},
      gateways: [],
      ignoreUriCase: false,
    })
    expect(http.route).toEqual([
      {
        destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } },
        weight: 90,
        headers: { request: { set: { 'x-route': 'v2' }, add: {}, remove: [] } },
      },
      { destination: { host: 'reviews', subset: 'v1' }, weight: 10 },
    ])
    expect(http.rewrite).toEqual({ uri: '/' })
    expect(http.timeout).toBe('0.5s')
    expect(http.headers).toEqual({ response: { set: {}, add: {}, remove: ['x-internal'] } })
  })

  it('reads redirects and direct responses', () => {
    const { resources, messages } = load(`  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: new.example.com}
  - directResponse:
      status: 503
      body: {string: unavailable}
`)
    expect(messages).toEqual([])
    expect(resources[0].spec.http[0].redirect).toEqual({
      uri: '/new',
      authority: 'new.example.com',
      redirectCode: 301,
    })
    expect(resources[0].spec.http[1].directResponse).toEqual({ status: 503, body: { string: 'unavailable' } })
  })

  it('warns about the fields not supported yet and keeps the route without them', () => {
    const { resources, messages } = load(`  http:
  - route:
    - destination: {host: reviews}
    delegate: {name: other}
`)
    expect(messages).toEqual([
      "vs.yaml:10: warning: field 'spec.http[0].delegate' is not supported yet and is ignored",
    ])
    expect(resources).toHaveLength(1)
    expect(resources[0].spec.http[0].delegate).toBeUndefined()
  })

  it('reads mirror and mirrors, but not both', () => {
    const ok = load(`  http:
  - mirror: {host: shadow}
    mirrorPercentage: {value: 5}
${ROUTE}  - mirrors: [{destination: {host: shadow}, percentage: {value: 10}}]
${ROUTE}`)
    expect(ok.messages).toEqual([])
    expect(ok.resources[0].spec.http[0].mirror).toEqual({ host: 'shadow' })
    expect(ok.resources[0].spec.http[1].mirrors).toEqual([
      { destination: { host: 'shadow' }, percentage: { value: 10 } },
    ])
    const bad = load(`  http:
  - mirror: {host: shadow}
    mirrors: [{destination: {host: shadow}}]
${ROUTE}`)
    expect(bad.messages).toEqual([
      "vs.yaml:9: field 'spec.http[0].mirrors': HTTP route cannot contain both mirror and mirrors",
    ])
  })

  it('reads fault injection and checks it as Istio does', () => {
    const ok = load(`  http:
  - fault:
      delay: {fixedDelay: 7s, percentage: {value: 100}}
      abort: {httpStatus: 500, percentage: {value: 10}}
${ROUTE}`)
    expect(ok.messages).toEqual([])
    expect(ok.resources[0].spec.http[0].fault).toEqual({
      delay: { fixedDelay: '7s', percentage: { value: 100 } },
      abort: { httpStatus: 500, percentage: { value: 10 } },
    })
    const bad = load(`  http:
  - fault: {}
${ROUTE}  - fault:
      delay: {percentage: {value: 101}}
      abort: {httpStatus: 99, grpcStatus: NOPE}
${ROUTE}`)
    expect(bad.messages).toEqual([
      "vs.yaml:8: field 'spec.http[0].fault': HTTP fault injection must have an abort and/or a delay",
      "vs.yaml:12: field 'spec.http[1].fault.delay.percentage.value': percentage out of range: must be between 0.0 and 100.0",
      "vs.yaml:12: field 'spec.http[1].fault.delay.fixedDelay': delay must specify fixedDelay",
      "vs.yaml:13: field 'spec.http[1].fault.abort.httpStatus': invalid abort http status 99",
      "vs.yaml:13: field 'spec.http[1].fault.abort.grpcStatus': invalid abort grpc status 'NOPE'",
      "vs.yaml:13: field 'spec.http[1].fault.abort.grpcStatus': abort may only specify one of httpStatus or grpcStatus",
    ])
  })

  it('reads retries and checks them as Istio does', () => {
    const ok = load(`  http:
  - retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx, 409,unavailable"}
${ROUTE}`)
    expect(ok.messages).toEqual([])
    expect(ok.resources[0].spec.http[0].retries).toMatchObject({ attempts: 3, perTryTimeout: '2s' })
    const bad = load(`  http:
  - retries: {attempts: -1, perTryTimeout: 0s, retryOn: "5xx,bogus", retryRemoteLocalities: true}
${ROUTE}`)
    expect(bad.messages).toEqual([
      "vs.yaml:8: field 'spec.http[0].retries.attempts': attempts cannot be negative",
      "vs.yaml:8: field 'spec.http[0].retries.perTryTimeout': duration '0s' must be at least 1ms",
      "vs.yaml:8: field 'spec.http[0].retries.retryOn': bogus is not a valid retryOn policy",
    ])
  })

  it('warns about the retryOn conditions it accepts but cannot act on, and keeps the others in force', () => {
    // Istio accepts these names (pkg/config/validation supportedRetryOnPolicies); the README promises a
    // warning naming what is accepted but not implemented, never a silent no-op.
    const mixed = load(`  http:
  - retries: {attempts: 2, retryOn: "5xx,retriable-headers,503"}
${ROUTE}`)
    expect(mixed.messages).toEqual([
      "vs.yaml:8: warning: field 'spec.http[0].retries.retryOn' condition 'retriable-headers' is not supported yet and ignored",
    ])
    const kept = parseRetryOn(mixed.resources[0].spec.http[0].retries?.retryOn ?? '')
    expect(kept.on).toBe(RetryOn.fiveXx | RetryOn.retriableStatusCodes)
    expect([...kept.statusCodes]).toEqual([503])

    const only = load(`  http:
  - retries: {attempts: 2, retryOn: "envoy-ratelimited, http3-post-connect-failure"}
${ROUTE}`)
    expect(only.messages).toEqual([
      "vs.yaml:8: warning: field 'spec.http[0].retries.retryOn' conditions 'envoy-ratelimited', 'http3-post-connect-failure' are not supported yet and ignored",
    ])
    // Nothing left to act on: the route retries on nothing (not on Istio's default conditions).
    const nothing = parseRetryOn(only.resources[0].spec.http[0].retries?.retryOn ?? '')
    expect(retriableFailure({ ...defaultRetryPolicy, ...nothing }, 'connectFailure')).toBe(false)
    expect(retriableResponse({ ...defaultRetryPolicy, ...nothing }, 503, -1)).toBe(false)

    const safe = load(`  http:
  - retries: {attempts: 2, retryOn: reset-before-request}
${ROUTE}`)
    expect(safe.messages).toEqual([])
  })

  it('reads tcp[] and tls[] routes with their L4 matches and weights', () => {
    const { resources, messages } = load(`  tcp:
  - match: [{port: 5432, destinationSubnets: [10.0.0.0/8, 192.168.1.1], sourceLabels: {app: web}}]
    route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2, port: {number: 5433}}, weight: 20}
  - route: [{destination: {host: reviews}}]
  tls:
  - match: [{port: 443, sniHosts: [reviews]}]
    route: [{destination: {host: reviews}}]
`)
    expect(messages).toEqual([])
    const { tcp, tls } = resources[0].spec
    expect(tcp[0].match[0]).toEqual({
      port: 5432,
      destinationSubnets: ['10.0.0.0/8', '192.168.1.1'],
      sourceLabels: { app: 'web' },
      gateways: [],
    })
    expect(tcp[0].route.map((r) => r.weight)).toEqual([80, 20])
    expect(tcp[1].match).toEqual([])
    expect(tls[0].match[0].sniHosts).toEqual(['reviews'])
  })

  it("checks tcp[] and tls[] routes as Istio's validation does", () => {
    const { messages } = load(`  tcp:
  - match: [{destinationSubnets: [10.0.0.0/33], sourceSubnet: 1.2.3.4}]
  - route:
    - {destination: {host: a}, weight: 0}
    - {destination: {host: b}, weight: 0}
  tls:
  - route: [{destination: {host: reviews}}]
  - match: [{sniHosts: []}, {sniHosts: [other.example.com, "*.reviews"]}]
`)
    expect(messages).toEqual([
      "vs.yaml:8: field 'spec.tcp[0].match[0].destinationSubnets[0]': '10.0.0.0/33' is not a valid IP address or CIDR block",
      "vs.yaml:8: warning: field 'spec.tcp[0].match[0].sourceSubnet' is not supported yet and is ignored",
      "vs.yaml:8: field 'spec.tcp[0].route': TCP route is required",
      "vs.yaml:9: field 'spec.tcp[1].route': total destination weight = 0",
      "vs.yaml:13: field 'spec.tls[0].match': TLS route must have at least one match condition",
      "vs.yaml:14: field 'spec.tls[1].match[0].sniHosts': TLS match must have at least one SNI host",
      "vs.yaml:14: field 'spec.tls[1].route': TLS route is required",
      'vs.yaml:14: field \'spec.tls[1].match[1].sniHosts[0]\': SNI host "other.example.com" is not a compatible subset of any of the virtual service hosts: [reviews]',
      'vs.yaml:14: field \'spec.tls[1].match[1].sniHosts[1]\': SNI host "*.reviews" is not a compatible subset of any of the virtual service hosts: [reviews]',
    ])
  })

  it('warns about routing on JWT claims', () => {
    const { resources, messages } = load(`  http:
  - match:
    - headers:
        "@request.auth.claims.group": {exact: admin}
${ROUTE}`)
    expect(messages).toEqual([
      `vs.yaml:10: warning: field 'spec.http[0].match[0].headers["@request.auth.claims.group"]' is not supported yet and is ignored`,
    ])
    expect(resources[0].spec.http[0].match[0].headers).toEqual({})
  })

  it('requires exactly one of exact, prefix and regex in a string match', () => {
    const { messages } = load(`  http:
  - match:
    - uri: {prefix: /a, exact: /a}
      method: {}
${ROUTE}`)
    expect(messages).toEqual([
      "vs.yaml:9: field 'spec.http[0].match[0].uri': string match may set only one of exact, prefix or regex (found exact and prefix)",
      "vs.yaml:10: field 'spec.http[0].match[0].method': string match must set one of exact, prefix or regex",
    ])
  })

  it('rejects regexes that RE2 cannot compile', () => {
    const { messages } = load(`  http:
  - match:
    - uri:
        regex: "/api/(?=v1)"
${ROUTE}`)
    expect(messages).toEqual([
      "vs.yaml:10: field 'spec.http[0].match[0].uri.regex': error parsing regexp: invalid or unsupported Perl syntax: `(?=`; Istio uses RE2 style regex (https://github.com/google/re2/wiki/Syntax)",
    ])
  })

  it('rejects header names that are not HTTP tokens', () => {
    const { messages } = load(`  http:
  - match:
    - headers:
        "end user": {exact: jason}
${ROUTE}`)
    expect(messages).toEqual([
      "vs.yaml:10: field 'spec.http[0].match[0].headers[\"end user\"]': header name 'end user' is not a valid header name",
    ])
  })

  it('keeps redirect, direct response and route apart, as Istio does', () => {
    const { messages } = load(`  http:
  - redirect: {uri: /x}
    route:
    - destination: {host: reviews}
  - directResponse: {status: 200}
    route:
    - destination: {host: reviews}
  - name: nothing
    timeout: 1s
`)
    expect(messages).toEqual([
      "vs.yaml:8: field 'spec.http[0].redirect': HTTP route cannot contain both route and redirect",
      "vs.yaml:11: field 'spec.http[1].directResponse': HTTP route cannot contain both route and directResponse",
      "vs.yaml:14: field 'spec.http[2]': HTTP route must have one of route, redirect or directResponse",
    ])
  })

  it('checks redirects', () => {
    const { messages } = load(`  http:
  - redirect: {redirectCode: 200}
  - redirect: {uri: /x, scheme: ftp, port: 80, derivePort: FROM_REQUEST_PORT}
`)
    expect(messages).toEqual([
      "vs.yaml:8: field 'spec.http[0].redirect': redirect must specify URI, authority, scheme, or port",
      "vs.yaml:8: field 'spec.http[0].redirect.redirectCode': 200 is not a valid redirect code, must be 3xx",
      "vs.yaml:9: field 'spec.http[1].redirect.derivePort': redirect may only specify one of port or derivePort",
      `vs.yaml:9: field 'spec.http[1].redirect.scheme': invalid redirect scheme 'ftp', must be "http" or "https"`,
    ])
  })

  it('checks direct responses', () => {
    const { messages } = load(`  http:
  - directResponse:
      status: 700
      body: {string: a, bytes: YQ==}
`)
    expect(messages).toEqual([
      "vs.yaml:9: field 'spec.http[0].directResponse.status': HTTP status 700 is not in range 200-599",
      "vs.yaml:10: field 'spec.http[0].directResponse.body.bytes': body may only specify one of string or bytes",
    ])
  })

  it('checks rewrites', () => {
    const { messages } = load(`  http:
  - rewrite:
      uri: /a
      uriRegexRewrite: {match: "^/b(.*)", rewrite: "/c\\\\1"}
${ROUTE}  - rewrite: {}
${ROUTE}`)
    expect(messages).toEqual([
      "vs.yaml:10: field 'spec.http[0].rewrite.uriRegexRewrite': rewrite may only contain one of uri or uriRegexRewrite",
      "vs.yaml:13: field 'spec.http[1].rewrite': rewrite must specify at least one of uri, uriRegexRewrite, or authority",
    ])
  })

  it('checks timeouts as Istio does', () => {
    const { messages } = load(`  http:
  - timeout: 10
${ROUTE}  - timeout: 5 seconds
${ROUTE}  - timeout: 0s
${ROUTE}  - timeout: 1.5ms
${ROUTE}`)
    expect(messages).toEqual([
      "vs.yaml:8: field 'spec.http[0].timeout': expected a string, got number 10",
      "vs.yaml:11: field 'spec.http[1].timeout': invalid duration '5 seconds': expected a number with a unit (ns, us, ms, s, m, h), e.g. 100ms, 1.5s, 1h2m",
      "vs.yaml:14: field 'spec.http[2].timeout': duration '0s' must be at least 1ms",
      "vs.yaml:17: field 'spec.http[3].timeout': duration '1.5ms': only durations to ms precision are supported",
    ])
  })

  it('checks weights', () => {
    const { messages } = load(`  http:
  - route:
    - destination: {host: a}
      weight: -1
  - route:
    - destination: {host: a}
    - destination: {host: b}
`)
    expect(messages).toEqual([
      "vs.yaml:10: field 'spec.http[0].route[0].weight': weight must be a non-negative integer (got -1)",
      "vs.yaml:11: field 'spec.http[1].route': total destination weight = 0",
    ])
  })

  it('checks destinations', () => {
    const { messages } = load(`  http:
  - route:
    - destination: {host: "*", subset: "v1.0", port: {number: 0}}
`)
    expect(messages).toEqual([
      "vs.yaml:9: field 'spec.http[0].route[0].destination.host': invalid destination host *",
      "vs.yaml:9: field 'spec.http[0].route[0].destination.subset': subset name is invalid: 'v1.0'",
      "vs.yaml:9: field 'spec.http[0].route[0].destination.port.number': port number 0 must be in the range 1..65535",
    ])
  })

  it('checks header edits', () => {
    const { messages } = load(`  http:
  - route:
    - destination: {host: a}
    headers:
      request:
        set: {":path": /x}
      response:
        remove: [host]
`)
    expect(messages).toEqual([
      `vs.yaml:12: field 'spec.http[0].headers.request.set[":path"]': invalid header ':path': header cannot have ':' prefix`,
      "vs.yaml:14: field 'spec.http[0].headers.response.remove[0]': invalid header 'host': cannot set Host header",
    ])
  })

  it('requires hosts, and no bare wildcard for the mesh', () => {
    const noHosts = parseResources(
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  http: []\n',
      'vs.yaml',
      'default',
    )
    expect(noHosts.messages.map(formatMessage)).toEqual(["vs.yaml:4: missing required field 'spec.hosts'"])
    const wildcard = parseResources(
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: ["*"]\n',
      'vs.yaml',
      'default',
    )
    expect(wildcard.messages.map(formatMessage)).toEqual([
      "vs.yaml:5: field 'spec.hosts[0]': wildcard host * is not allowed for virtual services bound to the mesh gateway ('mesh')",
    ])
  })
})
