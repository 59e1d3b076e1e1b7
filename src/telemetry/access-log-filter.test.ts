// The CEL subset of Telemetry accessLogging filters: what parses, what is refused by name, and how entries evaluate.

import { describe, expect, it } from 'vitest'
import {
  accessLogFilterAccepts,
  accessLogFilterAcceptsTcp,
  parseAccessLogFilter,
} from './access-log-filter.ts'
import type { RequestRecord } from './request-record.ts'
import type { ResponseFlag } from './response-flags.ts'
import type { TcpRecord } from './tcp-record.ts'
import { meshTelemetryPolicy } from './telemetry-policy.ts'

const telemetry = meshTelemetryPolicy(undefined).inbound

/** A finished request as an observer sees it: plain data with the given differences. */
function request(fields: Partial<RequestRecord> & { headers?: Record<string, string> } = {}): RequestRecord {
  const headers = fields.headers ?? {}
  return {
    direction: 'inbound',
    listenerName: 'inbound|8080||',
    method: 'GET',
    url: '/api/items?page=2',
    path: '/api/items',
    authority: 'shop:8080',
    scheme: 'http',
    http2: false,
    protocol: 'HTTP/1.1',
    header: (name: string) => headers[name],
    startTime: 0,
    endTime: 5,
    responseStatus: 200,
    responseFlags: [],
    responseCodeDetails: 'via_upstream',
    grpcStatus: undefined,
    requestBodyBytes: 0,
    responseBodyBytes: 12,
    requestMessages: 0,
    responseMessages: 0,
    requestId: 'r-1',
    routeName: 'default',
    routeStatName: 'default',
    clusterName: 'inbound|8080||',
    destinationService: '',
    upstreamHostPort: '127.0.0.1:9080',
    upstreamLocalAddress: undefined,
    upstreamTransportFailureReason: '',
    attemptCount: 1,
    upstreamServiceTime: 3,
    downstreamRemoteAddress: '10.0.0.7:40000',
    downstreamLocalAddress: '10.0.0.9:8080',
    requestedServerName: undefined,
    trace: undefined,
    peer: undefined,
    downstreamPeerMetadata: undefined,
    upstreamPeerMetadata: undefined,
    upstreamMtls: false,
    telemetry,
    ...fields,
  }
}

function connection(flags: ResponseFlag[] = []): TcpRecord {
  return {
    direction: 'outbound',
    listenerName: 'outbound|3306||',
    opened: true,
    startTime: 0,
    endTime: 9,
    bytesReceived: 10,
    bytesSent: 20,
    responseFlags: flags,
    terminationDetails: '',
    clusterName: 'outbound|3306||db.default.svc.cluster.local',
    destinationService: 'db.default.svc.cluster.local',
    upstreamHostPort: '10.0.0.3:3306',
    upstreamLocalAddress: '10.0.0.9:51000',
    upstreamTransportFailureReason: '',
    downstreamRemoteAddress: '10.0.0.9:50000',
    downstreamLocalAddress: '10.0.0.3:3306',
    sni: undefined,
    peer: undefined,
    downstreamPeerMetadata: undefined,
    upstreamPeerMetadata: undefined,
    upstreamMtls: false,
    telemetry,
  }
}

function accepts(expression: string, record: RequestRecord): boolean {
  const parsed = parseAccessLogFilter(expression)
  if ('error' in parsed) throw new Error(parsed.error)
  return accessLogFilterAccepts(parsed.filter, record)
}

describe('parseAccessLogFilter', () => {
  it("parses Istio's documented example (response.code >= 400) to plain data", () => {
    const parsed = parseAccessLogFilter('response.code >= 400')
    expect(parsed).toEqual({
      filter: {
        expression: 'response.code >= 400',
        root: { kind: 'compare', op: '>=', attribute: { name: 'response.code' }, value: 400 },
      },
    })
    // Plain data: it survives a JSON round trip unchanged (the model holds no functions).
    if ('filter' in parsed) expect(JSON.parse(JSON.stringify(parsed.filter))).toEqual(parsed.filter)
  })

  it.each([
    ["request.url_path.matches('^/api')", "function 'matches' is not supported"],
    ['size(request.headers) > 2', "attribute 'size' is not supported"],
    ['response.code >= "400"', `'response.code' is compared with "400"`],
    ["request.method == 'GET' &&", 'unexpected the end'],
    ['response.code + 1 > 400', "unexpected '+'"],
    ['request.method == request.host', "'==' compares an attribute with a literal only"],
    ['response.code', "'response.code' is not a boolean"],
    ["filter_state['x'] == 'y'", "attribute 'filter_state' is not supported"],
  ])('refuses %s, naming the part: %s', (expression, part) => {
    const parsed = parseAccessLogFilter(expression)
    expect('error' in parsed && parsed.error).toContain(part)
  })
})

describe('accessLogFilterAccepts (Envoy attributes over a finished request)', () => {
  it('compares response.code', () => {
    expect(accepts('response.code >= 400', request({ responseStatus: 503 }))).toBe(true)
    expect(accepts('response.code >= 400', request({ responseStatus: 200 }))).toBe(false)
    expect(accepts('400 <= response.code', request({ responseStatus: 404 }))).toBe(true)
    expect(accepts('response.code in [500, 503]', request({ responseStatus: 503 }))).toBe(true)
    expect(accepts('response.code in [500, 503]', request({ responseStatus: 502 }))).toBe(false)
  })

  it("reads response.flags as Envoy's bit mask (UF 0x20, URX 0x8000) and response.code_details", () => {
    const failed = request({ responseStatus: 503, responseFlags: ['UF', 'URX'] })
    expect(accepts('response.flags != 0u', failed)).toBe(true)
    expect(accepts('response.flags == 0', request())).toBe(true)
    expect(accepts('response.flags == 32800', failed)).toBe(true)
    expect(accepts("response.code_details.startsWith('upstream_reset')", failed)).toBe(false)
    expect(accepts("response.code_details == 'via_upstream'", request())).toBe(true)
  })

  it('combines with &&, ||, ! and parentheses', () => {
    const expression =
      "!(request.method == 'GET' && request.url_path.startsWith('/healthz')) || response.code >= 500"
    expect(accepts(expression, request({ url: '/healthz/ready', path: '/healthz/ready' }))).toBe(false)
    expect(accepts(expression, request({ url: '/healthz', path: '/healthz', responseStatus: 503 }))).toBe(
      true,
    )
    expect(accepts(expression, request())).toBe(true)
  })

  it('reads request headers, their presence, the host, path, query and xds names', () => {
    const jason = request({ headers: { 'end-user': 'jason' } })
    expect(accepts("request.headers['End-User'] == 'jason'", jason)).toBe(true)
    expect(accepts("request.headers['end-user'] == 'jason'", request())).toBe(false)
    expect(accepts("'end-user' in request.headers", jason)).toBe(true)
    expect(accepts("has(request.headers['end-user'])", request())).toBe(false)
    expect(accepts("request.host == 'shop:8080' && request.path.endsWith('page=2')", request())).toBe(true)
    expect(accepts("request.query.contains('page')", request())).toBe(true)
    expect(accepts("xds.cluster_name == 'inbound|8080||' && xds.route_name == 'default'", request())).toBe(
      true,
    )
    expect(accepts('destination.port == 8080 && source.port == 40000', request())).toBe(true)
    expect(accepts('connection.mtls', request())).toBe(false)
  })

  it('an attribute the entry lacks is an error: the entry is not logged, unless || makes it moot', () => {
    // No response was sent (the client left): response.code is absent, as in Envoy.
    const gone = request({ responseStatus: 0, responseFlags: ['DC'] })
    expect(accepts('response.code >= 400', gone)).toBe(false)
    expect(accepts('!(response.code >= 400)', gone)).toBe(false)
    expect(accepts('response.code >= 400 || response.flags != 0', gone)).toBe(true)
    expect(accepts('response.code >= 400 && false', gone)).toBe(false)
  })

  it('evaluates TCP entries: connection attributes present, request and response.code absent', () => {
    const parse = (e: string) => {
      const parsed = parseAccessLogFilter(e)
      if ('error' in parsed) throw new Error(parsed.error)
      return parsed.filter
    }
    expect(accessLogFilterAcceptsTcp(parse('response.code >= 400'), connection())).toBe(false)
    expect(accessLogFilterAcceptsTcp(parse('response.flags != 0'), connection(['UF', 'URX']))).toBe(true)
    expect(accessLogFilterAcceptsTcp(parse('response.flags != 0'), connection())).toBe(false)
    expect(
      accessLogFilterAcceptsTcp(
        parse("xds.cluster_name.endsWith('db.default.svc.cluster.local')"),
        connection(),
      ),
    ).toBe(true)
    expect(accessLogFilterAcceptsTcp(parse('upstream.port == 3306'), connection())).toBe(true)
  })
})
