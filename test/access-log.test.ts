// Scenario: the access log of a real proxy process, TEXT and JSON, parsed field by field for each response flag, TCP, rotation and shutdown.

import { access, readFile, rename } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { exchange, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { answerAfter, type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

/** An entry as Istio's JSON encoding names its fields (pilot/pkg/model/telemetry_logging.go, EnvoyJSONLogFormatIstio). */
interface Entry {
  start_time: string
  method: string | null
  path: string | null
  protocol: string | null
  response_code: number
  response_flags: string
  response_code_details: string | null
  connection_termination_details: string | null
  upstream_transport_failure_reason: string | null
  bytes_received: number
  bytes_sent: number
  duration: number
  upstream_service_time: string | null
  x_forwarded_for: string | null
  user_agent: string | null
  request_id: string | null
  authority: string | null
  upstream_host: string | null
  upstream_cluster: string | null
  upstream_local_address: string | null
  downstream_local_address: string | null
  downstream_remote_address: string | null
  requested_server_name: string | null
  route_name: string | null
}

/**
 * Istio's EnvoyTextLogFormat, one capture per field, in order:
 * [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
 * %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED%
 * %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
 * "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS%
 * %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%
 */
const textFormat =
  /^\[(\S+)\] "(\S+) (\S+) (\S+)" (\d+) (\S+) (\S+) (\S+) "([^"]*)" (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$/

function dash(value: string): string | null {
  return value === '-' ? null : value
}

function parseText(line: string): Entry {
  const m = textFormat.exec(line)
  if (m === null) throw new Error(`not Istio's TEXT format: ${line}`)
  return {
    start_time: m[1],
    method: dash(m[2]),
    path: dash(m[3]),
    protocol: dash(m[4]),
    response_code: Number(m[5]),
    response_flags: m[6],
    response_code_details: dash(m[7]),
    connection_termination_details: dash(m[8]),
    upstream_transport_failure_reason: dash(m[9]),
    bytes_received: Number(m[10]),
    bytes_sent: Number(m[11]),
    duration: Number(m[12]),
    upstream_service_time: dash(m[13]),
    x_forwarded_for: dash(m[14]),
    user_agent: dash(m[15]),
    request_id: dash(m[16]),
    authority: dash(m[17]),
    upstream_host: dash(m[18]),
    upstream_cluster: dash(m[19]),
    upstream_local_address: dash(m[20]),
    downstream_local_address: dash(m[21]),
    downstream_remote_address: dash(m[22]),
    requested_server_name: dash(m[23]),
    route_name: dash(m[24]),
  }
}

const jsonKeys = [
  'start_time',
  'route_name',
  'method',
  'path',
  'protocol',
  'response_code',
  'response_flags',
  'response_code_details',
  'connection_termination_details',
  'upstream_transport_failure_reason',
  'bytes_received',
  'bytes_sent',
  'duration',
  'upstream_service_time',
  'x_forwarded_for',
  'user_agent',
  'request_id',
  'authority',
  'upstream_host',
  'upstream_cluster',
  'upstream_local_address',
  'downstream_local_address',
  'downstream_remote_address',
  'requested_server_name',
]

function parseJson(line: string): Entry {
  const entry = JSON.parse(line) as Entry
  // Exactly Istio's keys, with Envoy's typed values (json_format renders numbers as numbers).
  expect(Object.keys(entry).sort()).toEqual([...jsonKeys].sort())
  for (const key of ['response_code', 'bytes_received', 'bytes_sent', 'duration'] as const)
    expect(typeof entry[key]).toBe('number')
  return entry
}

/** An upstream that never answers (held until the test ends). */
const stalling: Handler = (req) => {
  req.resume()
}

let app: Upstream
let stall: Upstream
let slow: Upstream
let tcpApp: TcpServer
let closedPort: number

beforeAll(async () => {
  app = await startUpstream('app')
  stall = await startUpstream('stall', stalling)
  slow = await startUpstream('slow', answerAfter(3_000, 'late'))
  tcpApp = await startTcpServer('tcp-app')
  ;[closedPort] = await freePorts(1)
})

afterAll(async () => {
  for (const server of [app, stall, slow]) {
    server?.server.closeAllConnections()
    await server?.close()
  }
  await tcpApp?.close()
})

/** Both encodings, each its own proxy process writing to a file beside its bootstrap (a relative path). */
describe.each(['TEXT', 'JSON'] as const)('access log, %s encoding', (encoding) => {
  let proxy: ProxyProcess
  let egress: number
  let limited: number
  let tcpPort: number
  let tcpDeadPort: number
  const logFile = (): string => join(proxy.dir, 'logs', 'access.log')
  const parse = encoding === 'TEXT' ? parseText : parseJson

  async function entries(file = logFile()): Promise<Entry[]> {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch {
      return []
    }
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map(parse)
  }

  /** Waits for the entry whose path is `path` (each test uses its own). */
  async function entryFor(path: string): Promise<Entry> {
    let found: Entry | undefined
    await eventually(async () => {
      found = (await entries()).find((e) => e.path === path)
      return found !== undefined
    })
    return found as Entry
  }

  const service = (name: string, port: number): string => istio.loopbackService(name, 80, port)

  beforeAll(async () => {
    ;[egress, limited, tcpPort, tcpDeadPort] = await freePorts(4)
    proxy = await startProxy({
      resources: {
        'sidecar.yaml': istio.sidecar({
          egress: [
            { port: egress, protocol: 'HTTP', name: 'http' },
            { port: limited, protocol: 'HTTP', name: 'http-limited' },
          ],
          ingress: [
            istio.loopbackIngress(tcpPort, tcpApp.port, 'TCP', 'tcp'),
            istio.loopbackIngress(tcpDeadPort, closedPort, 'TCP', 'tcp-dead'),
          ],
        }),
        'services.yaml': istio.yamlStream(
          service('app', app.port),
          service('refused', closedPort),
          service('stall', stall.port),
          service('slow', slow.port),
          service('held', stall.port),
          service('faulty', app.port),
          istio.destinationRule('held', '    connectionPool: {http: {http2MaxRequests: 1}}\n'),
          istio.virtualService({
            hosts: ['app'],
            http: [{ name: 'app-route', route: istio.routeTo('app') }],
          }),
          istio.virtualService({
            hosts: ['stall'],
            http: [{ timeout: '0.3s', route: istio.routeTo('stall') }],
          }),
          istio.virtualService({
            hosts: ['faulty'],
            http: [
              {
                fault: { abort: { percentage: { value: 100 }, httpStatus: 500 } },
                route: istio.routeTo('faulty'),
              },
            ],
          }),
        ),
      },
      extraBootstrap: `telemetry:
  accessLog: {path: logs/access.log, encoding: ${encoding}}
rateLimits:
  - port: ${limited}
    tokenBucket: {maxTokens: 1, tokensPerFill: 1, fillInterval: 1h}
`,
    })
  })

  afterAll(async () => {
    await proxy?.stop()
  })

  it('a proxied request: every field of the success line (outbound, via_upstream, the named route)', async () => {
    const before = Date.now()
    const reply = await send(egress, 'app', '/ok?x=1', {
      headers: { 'user-agent': 'access-log-test', 'x-forwarded-for': '10.1.2.3', 'x-request-id': 'req-ok' },
    })
    expect(reply.status).toBe(200)
    const e = await entryFor('/ok?x=1')
    expect(e.method).toBe('GET')
    expect(e.protocol).toBe('HTTP/1.1')
    expect(e.response_code).toBe(200)
    expect(e.response_flags).toBe('-')
    expect(e.response_code_details).toBe('via_upstream')
    expect(e.connection_termination_details).toBeNull()
    expect(e.upstream_transport_failure_reason).toBeNull()
    expect(e.user_agent).toBe('access-log-test')
    expect(e.x_forwarded_for).toBe('10.1.2.3')
    expect(e.request_id).toBe('req-ok')
    expect(e.authority).toBe('app')
    expect(e.upstream_host).toBe(`127.0.0.1:${app.port}`)
    expect(e.upstream_cluster).toBe('outbound|80||app.default.svc.cluster.local')
    expect(e.downstream_local_address).toBe(`127.0.0.1:${egress}`)
    expect(e.downstream_remote_address).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(e.requested_server_name).toBeNull()
    expect(e.route_name).toBe('app-route')
    expect(Number(e.upstream_service_time)).toBeGreaterThanOrEqual(0)
    expect(e.duration).toBeGreaterThanOrEqual(Number(e.upstream_service_time))
    // Envoy's %START_TIME%: UTC with milliseconds, within the test's own clock reading.
    expect(e.start_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    expect(Date.parse(e.start_time)).toBeGreaterThanOrEqual(before - 5)
    expect(Date.parse(e.start_time)).toBeLessThanOrEqual(Date.now())
  })

  it('NR: 404 route_not_found, no cluster, no upstream host', async () => {
    expect((await send(egress, 'nowhere.example', '/nr')).status).toBe(404)
    const e = await entryFor('/nr')
    expect([e.response_code, e.response_flags, e.response_code_details]).toEqual([
      404,
      'NR',
      'route_not_found',
    ])
    expect(e.upstream_cluster).toBeNull()
    expect(e.upstream_host).toBeNull()
    expect(e.upstream_service_time).toBeNull()
  })

  it("UF,URX: a refused connection after Istio's default two retries", async () => {
    expect((await send(egress, 'refused', '/uf')).status).toBe(503)
    const e = await entryFor('/uf')
    expect([e.response_code, e.response_flags]).toEqual([503, 'UF,URX'])
    expect(e.response_code_details).toBe('upstream_reset_before_response_started{connection_failure}')
    expect(e.upstream_host).toBe(`127.0.0.1:${closedPort}`)
    expect(e.upstream_cluster).toBe('outbound|80||refused.default.svc.cluster.local')
    // No VirtualService: Istio's route is named `default`.
    expect(e.route_name).toBe('default')
  })

  it('UT: 504 upstream_response_timeout when the route timeout (0.3s) runs out', async () => {
    expect((await send(egress, 'stall', '/ut')).status).toBe(504)
    const e = await entryFor('/ut')
    expect([e.response_code, e.response_flags, e.response_code_details]).toEqual([
      504,
      'UT',
      'upstream_response_timeout',
    ])
    expect(e.duration).toBeGreaterThanOrEqual(290)
  })

  it('UO: 503 overflow when http2MaxRequests (1) is already in flight', async () => {
    const first = send(egress, 'held', '/uo-first').catch(() => undefined)
    await eventually(async () => stall.seen.some((r) => r.url === '/uo-first'))
    const second = await send(egress, 'held', '/uo')
    expect(second.status).toBe(503)
    const e = await entryFor('/uo')
    expect([e.response_code, e.response_flags]).toEqual([503, 'UO'])
    expect(e.response_code_details).toBe('upstream_reset_before_response_started{overflow}')
    void first
  })

  it('FI: the VirtualService fault abort (500 fault_filter_abort)', async () => {
    expect((await send(egress, 'faulty', '/fi')).status).toBe(500)
    const e = await entryFor('/fi')
    expect([e.response_code, e.response_flags, e.response_code_details]).toEqual([
      500,
      'FI',
      'fault_filter_abort',
    ])
    expect(e.upstream_host).toBeNull()
  })

  it('RL: 429 local_rate_limited from the bootstrap rateLimits', async () => {
    expect((await send(limited, 'app', '/rl-1')).status).toBe(200)
    expect((await send(limited, 'app', '/rl')).status).toBe(429)
    const e = await entryFor('/rl')
    expect([e.response_code, e.response_flags, e.response_code_details]).toEqual([
      429,
      'RL',
      'local_rate_limited',
    ])
  })

  it('DC: a client that disconnects mid-request is logged with code 0 and downstream_remote_disconnect', async () => {
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: egress, path: '/dc', headers: { host: 'slow' } })
      req.on('error', () => resolve())
      req.end()
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 300)
    })
    const e = await entryFor('/dc')
    expect([e.response_code, e.response_flags, e.response_code_details]).toEqual([
      0,
      'DC',
      'downstream_remote_disconnect',
    ])
    expect(e.upstream_host).toBe(`127.0.0.1:${slow.port}`)
    expect(e.duration).toBeGreaterThanOrEqual(250)
  })

  it('a TCP connection: "- - -" 0, its byte counts, upstream host and local address', async () => {
    const echoed = await exchange(tcpPort, 'hello tcp')
    expect(echoed.text).toContain('hello tcp')
    const cluster = `inbound|${tcpPort}||`
    let e: Entry | undefined
    await eventually(async () => {
      e = (await entries()).find((x) => x.upstream_cluster === cluster)
      return e !== undefined
    })
    const tcp = e as Entry
    expect([tcp.method, tcp.path, tcp.protocol, tcp.response_code, tcp.response_flags]).toEqual([
      null,
      null,
      null,
      0,
      '-',
    ])
    expect(tcp.bytes_received).toBe(Buffer.byteLength('hello tcp'))
    expect(tcp.bytes_sent).toBe(echoed.bytes)
    expect(tcp.upstream_host).toBe(`127.0.0.1:${tcpApp.port}`)
    expect(tcp.upstream_local_address).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(tcp.downstream_local_address).toBe(`127.0.0.1:${tcpPort}`)
    expect(tcp.request_id).toBeNull()
  })

  it('a TCP connection the upstream refuses: UF,URX, as tcp_proxy logs it', async () => {
    await exchange(tcpDeadPort, 'x')
    const cluster = `inbound|${tcpDeadPort}||`
    let e: Entry | undefined
    await eventually(async () => {
      e = (await entries()).find((x) => x.upstream_cluster === cluster)
      return e !== undefined
    })
    expect(e?.response_flags).toBe('UF,URX')
    expect(e?.response_code).toBe(0)
    expect(e?.upstream_transport_failure_reason).not.toBeNull()
  })

  it('SIGUSR1 reopens the file: after a rename, new lines go to a new file at the configured path', async () => {
    await send(egress, 'app', '/before-rotation')
    await entryFor('/before-rotation')
    await rename(logFile(), `${logFile()}.1`)
    proxy.child.kill('SIGUSR1')
    // The reopen creates the file again at its path.
    await eventually(async () =>
      access(logFile()).then(
        () => true,
        () => false,
      ),
    )
    await send(egress, 'app', '/after-rotation')
    await entryFor('/after-rotation')
    const rotated = await entries(`${logFile()}.1`)
    expect(rotated.some((e) => e.path === '/before-rotation')).toBe(true)
    expect(rotated.some((e) => e.path === '/after-rotation')).toBe(false)
    // The signal reopened the log: it did not start Node's inspector, nor stop the proxy.
    expect(proxy.stderr()).not.toContain('Debugger listening')
    expect(proxy.child.exitCode).toBeNull()
  })

  it('the last request before SIGTERM is in the file once the process has exited', async () => {
    await send(egress, 'app', '/last-before-exit')
    expect(await proxy.child.kill('SIGTERM')).toBe(true)
    expect(await proxy.exited).toBe(0)
    expect((await entries()).some((e) => e.path === '/last-before-exit')).toBe(true)
  })
})

describe('access log filter from a Telemetry resource (accessLogging[].filter.expression)', () => {
  let proxy: ProxyProcess
  let egress: number

  beforeAll(async () => {
    ;[egress] = await freePorts(1)
    proxy = await startProxy({
      resources: {
        'sidecar.yaml': istio.sidecar({ egress: [{ port: egress, protocol: 'HTTP', name: 'http' }] }),
        'services.yaml': istio.loopbackService('app', 80, app.port),
        'telemetry.yaml': `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: errors-only, namespace: default}
spec:
  accessLogging:
    - providers: [{name: envoy}]
      filter: {expression: "response.code >= 400 || request.headers['x-log'] == 'yes'"}
`,
      },
      extraBootstrap: 'telemetry:\n  accessLog: {path: logs/access.log, encoding: JSON}\n',
    })
  })

  afterAll(async () => {
    await proxy?.stop()
  })

  it('writes only the entries the expression accepts', async () => {
    const file = join(proxy.dir, 'logs', 'access.log')
    const lines = async (): Promise<Entry[]> =>
      (await readFile(file, 'utf8').catch(() => ''))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Entry)
    expect((await send(egress, 'app', '/filtered-ok')).status).toBe(200)
    expect((await send(egress, 'nowhere', '/filtered-missing')).status).toBe(404)
    expect((await send(egress, 'app', '/filtered-flagged', { headers: { 'x-log': 'yes' } })).status).toBe(200)
    await eventually(async () => (await lines()).length >= 2)
    // The access log writes asynchronously: give a wrongly accepted entry time to show up too.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect((await lines()).map((e) => e.path)).toEqual(['/filtered-missing', '/filtered-flagged'])
  })
})
