// Scenario: admin /live/stat and /live/history (and `outrigger stat`) against known traffic: exact counts and success rates, p50 near the upstream's delay, TCP connections and bytes, windows.

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Client } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HistoryReport, StatReport, StatRow } from '../src/live/live-api.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { mainScript, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { echoHandler, openClient, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const DELAY_MS = 40
const OK = 15
const FAILED = 5
const SERVICE = 'app.default.svc.cluster.local'
const CLUSTER = `outbound|80||${SERVICE}`

let proxy: ProxyProcess
let app: Upstream
let echo: TcpServer
let egress: number
let tcpPort: number
let ingress: number
const INBOUND = 3

beforeAll(async () => {
  // /fail answers 500; everything answers after DELAY_MS.
  app = await startUpstream('app', (req, res) => {
    req.resume()
    setTimeout(() => {
      res.statusCode = req.url?.startsWith('/fail') ? 500 : 200
      res.end('ok')
    }, DELAY_MS)
  })
  echo = await startTcpServer('echo', echoHandler)
  ;[egress, tcpPort, ingress] = await freePorts(3)
  proxy = await startProxy({
    extraBootstrap: 'live: {enabled: true}\n',
    resources: {
      'sidecar.yaml': istio.sidecar({
        ingress: [istio.loopbackIngress(ingress, app.port, 'HTTP', 'http')],
        egress: [
          { port: egress, protocol: 'HTTP', name: 'http' },
          { port: tcpPort, protocol: 'TCP', name: 'tcp' },
        ],
      }),
      'services.yaml': istio.yamlStream(
        istio.staticService('app', [`{address: 127.0.0.1, ports: {http: ${app.port}}}`]),
        istio.serviceEntry({
          name: 'echo',
          hosts: ['echo.tcp.example'],
          ports: [{ number: tcpPort, name: 'tcp', protocol: 'TCP', targetPort: echo.port }],
        }),
        istio.virtualService({
          hosts: ['app'],
          http: [
            { name: 'failing', match: [{ uri: { prefix: '/fail' } }], route: istio.routeTo('app') },
            { route: istio.routeTo('app') },
          ],
        }),
      ),
    },
  })
  const client = new Client(`http://127.0.0.1:${egress}`, { pipelining: 0 })
  try {
    for (let i = 0; i < OK + FAILED; i++) {
      const res = await client.request({
        path: i < FAILED ? '/fail' : '/',
        method: 'GET',
        headers: { host: 'app' },
      })
      await res.body.text()
      expect(res.statusCode).toBe(i < FAILED ? 500 : 200)
    }
    // One request no route takes (404 NR): its route and cluster are (none).
    const res = await client.request({ path: '/', method: 'GET', headers: { host: 'nowhere' } })
    await res.body.text()
    expect(res.statusCode).toBe(404)
  } finally {
    await client.close()
  }
  const inbound = new Client(`http://127.0.0.1:${ingress}`)
  try {
    for (let i = 0; i < INBOUND; i++) {
      const res = await inbound.request({ path: '/', method: 'GET' })
      await res.body.text()
      expect(res.statusCode).toBe(200)
    }
  } finally {
    await inbound.close()
  }
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
  await echo?.close()
})

/** Runs the real `outrigger stat` and resolves with its exit code and output. */
async function statCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [mainScript, 'stat', ...args], {
      timeout: 20_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

async function stat(query: string): Promise<StatReport> {
  const res = await proxy.admin(`/live/stat?${query}`)
  expect(res.status, await res.clone().text()).toBe(200)
  return (await res.json()) as StatReport
}

function row(report: StatReport, name: string): StatRow {
  const found = report.rows.find((r) => r.name === name && r.direction === 'outbound')
  expect(found, `${name} in ${JSON.stringify(report.rows.map((r) => r.name))}`).toBeDefined()
  return found as StatRow
}

describe('GET /live/stat', () => {
  it('counts a service exactly: requests, success rate, p50 between the delay and 20 ms above it', async () => {
    const report = await stat('by=service&window=60s')
    expect(report.by).toBe('service')
    expect(report.windowSeconds).toBe(60)
    const app = row(report, SERVICE)
    expect(app.requests).toBe(OK + FAILED)
    expect(app.successRate).toBe(OK / (OK + FAILED))
    expect(app.requestsPerSecond).toBeCloseTo((OK + FAILED) / 60, 6)
    expect(app.latencyMs?.p50).toBeGreaterThanOrEqual(DELAY_MS)
    expect(app.latencyMs?.p50).toBeLessThanOrEqual(DELAY_MS + 20)
    expect(app.latencyMs?.p99).toBeGreaterThanOrEqual(app.latencyMs?.p50 ?? Number.NaN)
    // The 404 before routing has no service.
    expect(row(report, '(none)').requests).toBe(1)
  })

  it("names inbound requests' service after the workload: <canonical service>.<namespace>", async () => {
    const report = await stat('by=service&window=60s')
    const inbound = report.rows.filter((r) => r.direction === 'inbound')
    expect(inbound).toMatchObject([{ name: 'test.default', requests: INBOUND, successRate: 1 }])
    // Inbound rows come first.
    expect(report.rows[0].direction).toBe('inbound')
  })

  it('has a row per route: VirtualService namespace/name/http[] name, or its index', async () => {
    const report = await stat('by=route&window=60s')
    expect(row(report, 'default/app/failing')).toMatchObject({ requests: FAILED, successRate: 0 })
    expect(row(report, 'default/app/1')).toMatchObject({ requests: OK, successRate: 1 })
    expect(row(report, '(none)')).toMatchObject({ requests: 1, successRate: 1 })
  })

  it('has a row per cluster and per listener', async () => {
    expect(row(await stat('by=cluster&window=60s'), CLUSTER)).toMatchObject({
      requests: OK + FAILED,
      successRate: OK / (OK + FAILED),
    })
    const listeners = (await stat('by=listener&window=60s')).rows.filter((r) => r.direction === 'outbound')
    expect(listeners).toHaveLength(1)
    expect(listeners[0]).toMatchObject({ direction: 'outbound', requests: OK + FAILED + 1 })
  })

  it('drops requests older than the window', async () => {
    // The requests were sent in beforeAll; two seconds later a 1 s window no longer holds them.
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    const report = await stat('by=service&window=1s')
    expect(report.rows.find((r) => r.name === SERVICE)).toBeUndefined()
    expect(row(await stat('by=service&window=60s'), SERVICE).requests).toBe(OK + FAILED)
  })

  it('shows open TCP connections and bytes per second', async () => {
    const client = await openClient(tcpPort)
    try {
      const payload = 'x'.repeat(10_000)
      client.socket.write(payload)
      await client.waitFor(payload)
      // Bytes of open connections are sampled once a second.
      await new Promise((resolve) => setTimeout(resolve, 1_100))
      const open = row(await stat('by=service&window=10s'), 'echo.tcp.example')
      expect(open.tcpOpenConnections).toBe(1)
      expect(open.tcpBytesReceivedPerSecond).toBe(10_000 / 10)
      expect(open.tcpBytesSentPerSecond).toBe(10_000 / 10)
      expect(open.requests).toBe(0)
      expect(open.successRate).toBeNull()
      expect(open.latencyMs).toBeNull()
    } finally {
      client.socket.end()
      await client.closed
    }
    await expect
      .poll(async () => row(await stat('by=cluster&window=10s'), `outbound|${tcpPort}||echo.tcp.example`))
      .toMatchObject({
        tcpOpenConnections: 0,
        tcpBytesReceivedPerSecond: 1_000,
        tcpBytesSentPerSecond: 1_000,
      })
  })

  it('answers 400 on a bad grouping or window', async () => {
    for (const query of ['by=path', 'window=0s', 'window=61s', 'window=ten']) {
      const res = await proxy.admin(`/live/stat?${query}`)
      expect(res.status, query).toBe(400)
      expect(await res.text()).toMatch(/by must be|window must be/)
    }
    expect((await proxy.admin('/live/history?seconds=601')).status).toBe(400)
  })
})

describe('outrigger stat', () => {
  it('prints the JSON report with -o json: exact count and success rate', async () => {
    const r = await statCli(
      '--by',
      'service',
      '--window',
      '60s',
      '-o',
      'json',
      '--admin',
      `127.0.0.1:${proxy.adminPort}`,
    )
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as StatReport
    expect(report).toMatchObject({ by: 'service', windowSeconds: 60 })
    expect(row(report, SERVICE)).toMatchObject({ requests: OK + FAILED, successRate: OK / (OK + FAILED) })
  })

  it('prints a table with aligned columns', async () => {
    const r = await statCli('--by', 'route', '--window', '60s', '--admin', `127.0.0.1:${proxy.adminPort}`)
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0].split(/\s{2,}/)).toEqual([
      'NAME',
      'DIRECTION',
      'RPS',
      'SUCCESS',
      'P50',
      'P95',
      'P99',
      'TCP CONN',
      'TCP IN/s',
      'TCP OUT/s',
    ])
    // Numbers align right, so every line ends in the same column.
    expect(new Set(lines.map((line) => line.length)).size).toBe(1)
    const failing = lines.find((line) => line.startsWith('default/app/failing '))
    expect(failing?.split(/\s+/).slice(1, 4)).toEqual(['outbound', (FAILED / 60).toFixed(1), '0.00%'])
    const p50 = Number(
      lines
        .find((line) => line.startsWith('default/app/1 '))
        ?.split(/\s+/)[4]
        .replace('ms', ''),
    )
    expect(p50).toBeGreaterThanOrEqual(DELAY_MS)
    expect(p50).toBeLessThanOrEqual(DELAY_MS + 20)
  })

  it('exits 1 with the reason when the admin cannot be reached', async () => {
    const [closed] = await freePorts(1)
    const r = await statCli('--admin', `127.0.0.1:${closed}`)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(new RegExp(`cannot reach the admin API at 127.0.0.1:${closed}: ECONNREFUSED`))
  })

  it('exits 2 on a bad grouping or window', async () => {
    expect((await statCli('--by', 'path')).code).toBe(2)
    expect((await statCli('--window', '2m')).code).toBe(2)
  })
})

describe('GET /live/history', () => {
  it('has one point per second; the points hold every request', async () => {
    const res = await proxy.admin('/live/history?by=service&seconds=600')
    expect(res.status).toBe(200)
    const report = (await res.json()) as HistoryReport
    const app = report.rows.find((r) => r.name === SERVICE && r.direction === 'outbound')
    expect(app).toBeDefined()
    const points = app?.points ?? []
    const ts = points.map((p) => p.t)
    expect(ts).toEqual([...ts].sort((a, b) => a - b))
    expect(new Set(ts).size).toBe(ts.length)
    expect(points.reduce((sum, p) => sum + p.requestsPerSecond, 0)).toBe(OK + FAILED)
    const busy = points.filter((p) => p.requestsPerSecond > 0)
    for (const p of busy) {
      expect(p.latencyMs?.p50).toBeGreaterThanOrEqual(DELAY_MS)
      expect(p.successRate).not.toBeNull()
    }
  })
})

describe('live off', () => {
  let off: ProxyProcess
  beforeAll(async () => {
    const [port] = await freePorts(1)
    off = await startProxy({
      extraBootstrap: 'live: {enabled: false}\n',
      resources: { 'sidecar.yaml': istio.egressSidecar(port) },
    })
  })
  afterAll(async () => {
    await off?.stop()
  })

  it('answers 404 with the reason', async () => {
    for (const path of ['/live/stat', '/live/history']) {
      const res = await off.admin(path)
      expect(res.status).toBe(404)
      expect(await res.text()).toMatch(/live view is off/)
    }
  })

  it('makes `outrigger stat` exit 1 with the reason', async () => {
    const r = await statCli('--admin', `127.0.0.1:${off.adminPort}`)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/answered 404: the live view is off \(bootstrap live.enabled: false\)/)
  })
})
