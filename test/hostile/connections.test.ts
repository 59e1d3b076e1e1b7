// Hostile connection counts against `limits.maxConnectionsPerListener` and `limits.maxConnections`, and a silent client on a sniffed port.

import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loopbackService, sidecar, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { sumOf } from '../harness/prometheus-text.ts'
import { type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'

let proxy: ProxyProcess
let portA: number
let portB: number
let sniffed: number
let app: Upstream
const opened: Socket[] = []

beforeAll(async () => {
  ;[portA, portB, sniffed] = await freePorts(3)
  app = await startUpstream('app')
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({
        egress: [
          { port: portA, protocol: 'HTTP', name: 'http-a' },
          { port: portB, protocol: 'HTTP', name: 'http-b' },
          // No protocol: sniffed, and protocolDetectionTimeout is 0s (Istio's default: wait for bytes).
          { port: sniffed },
        ],
      }),
      'services.yaml': yamlStream(loopbackService('app', 80, app.port)),
    },
    extraBootstrap: `limits:
  maxConnectionsPerListener: 3
  maxConnections: 5
  requestHeadersTimeout: 1s
`,
  })
})

afterAll(async () => {
  for (const socket of opened) socket.destroy()
  await proxy?.stop()
  await app?.close()
})

async function stats(): Promise<Map<string, number>> {
  const text = await (await proxy.admin('/stats')).text()
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(': ')
    if (at > 0) map.set(line.slice(0, at), Number(line.slice(at + 2)))
  }
  return map
}

/** A connection kept open; resolves once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket))
    socket.on('error', () => {})
    socket.once('error', reject)
    opened.push(socket)
  })
}

/** One request on an open connection; resolves with the status line. */
function ask(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let data = ''
    const onData = (d: Buffer): void => {
      data += d.toString('latin1')
      if (data.includes('\r\n\r\n') && data.endsWith('}')) {
        socket.off('data', onData)
        resolve(data.split('\r\n')[0] ?? '')
      }
    }
    socket.on('data', onData)
    socket.write(`GET ${path} HTTP/1.1\r\nhost: app\r\n\r\n`)
  })
}

/** Resolves with how long after connecting the proxy closed the connection, and whether it sent anything. */
function closedAfter(socket: Socket): Promise<{ ms: number; bytes: number }> {
  const started = performance.now()
  let bytes = 0
  socket.on('data', (d: Buffer) => {
    bytes += d.length
  })
  return new Promise((resolve) => {
    if (socket.destroyed) resolve({ ms: 0, bytes })
    socket.once('close', () => resolve({ ms: performance.now() - started, bytes }))
  })
}

describe('connection limits', () => {
  it('refuses a listener’s connection over its limit at once, counts it, and keeps serving the open ones', async () => {
    const held = [await open(portA), await open(portA), await open(portA)]
    for (const [i, socket] of held.entries()) expect(await ask(socket, `/held-a${i}`)).toMatch(/ 200 /)
    const extra = await open(portA)
    extra.write('GET /refused HTTP/1.1\r\nhost: app\r\n\r\n')
    const refused = await closedAfter(extra)
    expect(refused.bytes).toBe(0)
    expect(refused.ms).toBeLessThan(500)
    expect(app.seen.filter((r) => r.url === '/refused')).toHaveLength(0)
    // The three open connections still work.
    for (const [i, socket] of held.entries()) expect(await ask(socket, `/again-a${i}`)).toMatch(/ 200 /)
    const s = await stats()
    expect(s.get(`listener.127.0.0.1_${portA}.downstream_cx_overflow`)).toBe(1)
    expect(s.get(`listener.127.0.0.1_${portA}.downstream_cx_active`)).toBe(3)
  })

  it('refuses a connection over the proxy-wide limit on another listener, and takes one again once a slot frees', async () => {
    // 3 on A (previous case) + 2 on B = 5, the global limit.
    const held = [await open(portB), await open(portB)]
    for (const [i, socket] of held.entries()) expect(await ask(socket, `/held-b${i}`)).toMatch(/ 200 /)
    const extra = await open(portB)
    const refused = await closedAfter(extra)
    expect(refused.bytes).toBe(0)
    const s = await stats()
    expect(s.get(`listener.127.0.0.1_${portB}.downstream_global_cx_overflow`)).toBe(1)
    expect(s.get(`listener.127.0.0.1_${portB}.downstream_cx_overflow`)).toBe(0)
    held[0]?.destroy()
    await new Promise((resolve) => setTimeout(resolve, 100))
    const again = await open(portB)
    expect(await ask(again, '/after-free')).toMatch(/ 200 /)
  })
})

describe('request-headers timeout on a sniffed port', () => {
  it('closes a client that sends nothing while protocol detection waits (protocolDetectionTimeout 0s)', async () => {
    // Free global slots first: the earlier cases hold five connections.
    for (const socket of opened) socket.destroy()
    await new Promise((resolve) => setTimeout(resolve, 100))
    const silent = await open(sniffed)
    const { ms, bytes } = await closedAfter(silent)
    expect(bytes).toBe(0)
    expect(ms).toBeGreaterThan(800)
    expect(ms).toBeLessThan(3_000)
    const s = await stats()
    expect(s.get(`http.outbound_127.0.0.1_${sniffed}.downstream_rq_header_timeout`)).toBe(1)
  })
})

describe('connection limit stats on the stats port’s /stats/prometheus', () => {
  it('shows each listener’s overflow counts as admin /stats does', async () => {
    const s = await stats()
    const prometheus = await (await fetch(`http://127.0.0.1:${proxy.statsPort}/stats/prometheus`)).text()
    for (const [port, stat] of [
      [portA, 'downstream_cx_overflow'],
      [portB, 'downstream_global_cx_overflow'],
    ] as const) {
      const value = s.get(`listener.127.0.0.1_${port}.${stat}`) ?? 0
      expect(value, stat).toBe(1)
      expect(sumOf(prometheus, `envoy_listener_${stat}`, { listener_address: `127.0.0.1_${port}` })).toBe(
        value,
      )
    }
    const timeouts = s.get(`http.outbound_127.0.0.1_${sniffed}.downstream_rq_header_timeout`) ?? 0
    expect(sumOf(prometheus, `envoy_http_outbound_127_0_0_1_${sniffed}_downstream_rq_header_timeout`)).toBe(
      timeouts,
    )
  })
})
