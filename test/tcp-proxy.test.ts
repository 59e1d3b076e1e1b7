// Scenario: opaque TCP through egress and ingress listeners: bytes both ways, half-close, weights, failures, timeouts, limits.

import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import {
  type Blackhole,
  echoHandler,
  exchange,
  openClient,
  replyAfterEndHandler,
  startBlackhole,
  startTcpServer,
  type TcpServer,
} from './harness/tcp.ts'

let proxy: ProxyProcess
let echo: TcpServer
let v1: TcpServer
let v2: TcpServer
let echoPort: number
let splitPort: number
let deadPort: number
let idlePort: number
let ingressPort: number
let closedPort: number
let limited: TcpServer
let blackhole: Blackhole
let limitedPort: number
let slowPort: number
let agedPort: number

/** A ServiceEntry `<name>.tcp.example` with one TCP port, served by 127.0.0.1:`targetPort`. */
const tcpService = (name: string, port: number, targetPort: number): string =>
  istio.serviceEntry({
    name,
    hosts: [`${name}.tcp.example`],
    ports: [{ number: port, name: 'tcp', protocol: 'TCP', targetPort }],
  })

/** A DestinationRule for `<name>.tcp.example` with these `connectionPool.tcp` settings. */
const tcpPool = (name: string, tcp: istio.Fields): string =>
  istio.destinationRule({ name, host: `${name}.tcp.example`, trafficPolicy: { connectionPool: { tcp } } })

beforeAll(async () => {
  echo = await startTcpServer('echo', echoHandler)
  v1 = await startTcpServer('v1', replyAfterEndHandler)
  v2 = await startTcpServer('v2', replyAfterEndHandler)
  limited = await startTcpServer('limited', echoHandler)
  blackhole = await startBlackhole()
  ;[echoPort, splitPort, deadPort, idlePort, ingressPort, closedPort, limitedPort, slowPort, agedPort] =
    await freePorts(9)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.sidecar({
        ingress: [
          { port: ingressPort, protocol: 'TCP', name: 'tcp', defaultEndpoint: `127.0.0.1:${echo.port}` },
        ],
        egress: [
          { port: echoPort, protocol: 'TCP', name: 'tcp-echo' },
          { port: splitPort, protocol: 'TCP', name: 'tcp-split' },
          { port: deadPort, name: 'tcp-dead' },
          { port: idlePort, protocol: 'TCP', name: 'tcp-idle' },
          { port: limitedPort, protocol: 'TCP', name: 'tcp-limited' },
          { port: slowPort, protocol: 'TCP', name: 'tcp-slow' },
          { port: agedPort, protocol: 'TCP', name: 'tcp-aged' },
        ],
      }),
      'services.yaml': istio.yamlStream(
        tcpService('echo', echoPort, echo.port),
        istio.serviceEntry({
          name: 'split',
          hosts: ['split.tcp.example'],
          ports: [{ number: splitPort, name: 'tcp', protocol: 'TCP' }],
          endpoints: istio.versionEndpoints('tcp', { v1: v1.port, v2: v2.port }),
        }),
        istio.destinationRule({
          name: 'split',
          host: 'split.tcp.example',
          subsets: istio.versionSubsets('v1', 'v2'),
        }),
        istio.virtualService({
          name: 'split',
          hosts: ['split.tcp.example'],
          tcp: [
            {
              match: [{ port: splitPort, sourceLabels: { app: 'someone-else' } }],
              route: istio.routeTo('split.tcp.example', 'v2'),
            },
            {
              match: [{ port: splitPort }],
              route: [
                { destination: { host: 'split.tcp.example', subset: 'v1' }, weight: 75 },
                { destination: { host: 'split.tcp.example', subset: 'v2' }, weight: 25 },
              ],
            },
          ],
        }),
        tcpService('dead', deadPort, closedPort),
        tcpService('idle', idlePort, echo.port),
        tcpPool('idle', { idleTimeout: '400ms' }),
      ),
      'limits.yaml': istio.yamlStream(
        tcpService('limited', limitedPort, limited.port),
        tcpPool('limited', { maxConnections: 2 }),
        tcpService('slow', slowPort, blackhole.port),
        tcpPool('slow', { connectTimeout: '300ms' }),
        tcpService('aged', agedPort, echo.port),
        tcpPool('aged', { maxConnectionDuration: '600ms' }),
      ),
    },
  })
  // The TCP proxy logs each connection's failure flag at debug.
  await (await proxy.admin('/logging?level=debug', { method: 'POST' })).arrayBuffer()
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([echo?.close(), v1?.close(), v2?.close(), limited?.close(), blackhole?.close()])
})

/** A TCP stat from /clusters: the cluster's own when `host` is omitted, else that endpoint's. */
async function clusterStat(cluster: string, stat: string, host?: string): Promise<number> {
  const text = await (await proxy.admin('/clusters')).text()
  const prefix = host === undefined ? `${cluster}::${stat}::` : `${cluster}::${host}::${stat}::`
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  return line === undefined ? Number.NaN : Number(line.slice(prefix.length))
}

/** Resolves once the proxy's log has a line containing `text` (fails after 5 s). */
async function logged(text: string): Promise<void> {
  await eventually(async () => proxy.stderr().includes(text))
}

describe('opaque TCP', () => {
  it('carries bytes both ways and passes the client FIN on (egress)', async () => {
    const reply = await exchange(echoPort, 'hello over tcp')
    expect(reply).toMatchObject({ text: 'hello over tcp', ended: true, error: undefined })
  })

  it('keeps a half-closed connection open for the server to answer after the client FIN', async () => {
    const reply = await exchange(splitPort, 'x'.repeat(1000))
    expect(reply.ended).toBe(true)
    expect(reply.text).toMatch(/^v[12]:1000$/)
  })

  it('streams megabytes both ways with back-pressure', async () => {
    const payload = randomBytes(8 * 1024 * 1024)
    const reply = await exchange(echoPort, payload, { timeoutMs: 20_000 })
    expect(reply.error).toBeUndefined()
    expect(reply.bytes).toBe(payload.length)
    expect(Buffer.from(reply.text, 'latin1').equals(payload)).toBe(true)
  })

  it('splits connections by the tcp[] route weights, skipping matches for other source labels', async () => {
    const seen = { v1: 0, v2: 0 }
    for (let i = 0; i < 120; i++) {
      const reply = await exchange(splitPort, 'ping')
      const name = reply.text.split(':')[0] as 'v1' | 'v2'
      seen[name]++
    }
    expect(seen.v1 + seen.v2).toBe(120)
    expect(seen.v2).toBeGreaterThan(10)
    expect(seen.v1).toBeGreaterThan(seen.v2)
  })

  it('closes the downstream when the upstream refuses the connection (UF)', async () => {
    const reply = await exchange(deadPort, 'anyone there?', { keepOpen: true })
    expect(reply.text).toBe('')
    expect([undefined, 'ECONNRESET'], JSON.stringify(reply)).toContain(reply.error)
    expect(reply.ms).toBeLessThan(2_000)
  })

  it('closes a connection idle for connectionPool.tcp.idleTimeout', async () => {
    const client = await openClient(idlePort)
    client.socket.write('first')
    await client.waitFor('first')
    const { ms } = await Promise.race([
      client.closed,
      new Promise<{ ms: number }>((_, reject) => setTimeout(() => reject(new Error('not closed')), 3_000)),
    ])
    expect(ms).toBeGreaterThanOrEqual(350)
    expect(ms).toBeLessThan(2_500)
  })

  it('keeps an active connection past the idle timeout', async () => {
    const client = await openClient(idlePort)
    for (let i = 0; i < 6; i++) {
      client.socket.write(`tick${i};`)
      await client.waitFor(`tick${i};`)
      await new Promise((r) => setTimeout(r, 150))
    }
    expect(client.received()).toContain('tick5;')
    client.socket.destroy()
  })

  it('forwards an ingress listener declared TCP to its defaultEndpoint', async () => {
    const reply = await exchange(ingressPort, 'inbound bytes')
    expect(reply).toMatchObject({ text: 'inbound bytes', ended: true })
  })

  it('applies a reloaded tcp[] route to new connections on the same bound port', async () => {
    await proxy.writeResource(
      'reroute.yaml',
      istio.virtualService({
        name: 'echo',
        hosts: ['echo.tcp.example'],
        tcp: [
          {
            route: [
              { destination: { host: 'split.tcp.example', subset: 'v2', port: { number: splitPort } } },
            ],
          },
        ],
      }),
    )
    await eventually(async () => (await exchange(echoPort, 'who')).text === 'v2:3')
    await proxy.writeResource('reroute.yaml', '')
    await eventually(async () => (await exchange(echoPort, 'who')).text === 'who')
  })

  it('shows how each listener serves connections, and its TCP routes, in config_dump', async () => {
    const dump = (await (await proxy.admin('/config_dump')).json()) as {
      model: { listeners: { name: string; serve: string; tcpRoutes: { tcp: { name: string }[] } }[] }
    }
    const split = dump.model.listeners.find((l) => l.name === `127.0.0.1_${splitPort}`)
    expect(split?.serve).toBe('tcp')
    expect(split?.tcpRoutes.tcp.map((r) => r.name)).toEqual(['default/split tcp[1]'])
    const dead = dump.model.listeners.find((l) => l.name === `127.0.0.1_${deadPort}`)
    expect(dead?.serve).toBe('tcp')
  })
})

describe('opaque TCP connection pool (DestinationRule connectionPool.tcp)', () => {
  it('maxConnections: a connection beyond it is closed without connecting upstream (UO), a closed one frees its slot', async () => {
    const cluster = `outbound|${limitedPort}||limited.tcp.example`
    const host = `127.0.0.1:${limited.port}`
    const first = await openClient(limitedPort)
    const second = await openClient(limitedPort)
    first.socket.write('one')
    second.socket.write('two')
    await Promise.all([first.waitFor('one'), second.waitFor('two')])
    expect(await clusterStat(cluster, 'tcp_cx_active')).toBe(2)

    const refused = await exchange(limitedPort, 'three', { keepOpen: true })
    expect(refused.text).toBe('')
    expect(refused.ms).toBeLessThan(2_000)
    expect(limited.accepted()).toBe(2)
    expect(await clusterStat(cluster, 'tcp_cx_overflow')).toBe(1)
    expect(await clusterStat(cluster, 'tcp_cx_total')).toBe(2)
    expect(await clusterStat(cluster, 'tcp_cx_total', host)).toBe(2)
    expect(await clusterStat(cluster, 'tcp_cx_active', host)).toBe(2)
    await logged(`${cluster}: UO upstream_cx_overflow`)

    first.socket.end()
    await first.closed
    await eventually(async () => (await clusterStat(cluster, 'tcp_cx_active')) === 1)
    const again = await exchange(limitedPort, 'again')
    expect(again).toMatchObject({ text: 'again', ended: true })
    expect(limited.accepted()).toBe(3)

    second.socket.end()
    await second.closed
    await eventually(async () => (await clusterStat(cluster, 'tcp_cx_active', host)) === 0)
    expect(await clusterStat(cluster, 'tcp_cx_overflow')).toBe(1)
  })

  it('connectTimeout: an upstream that never completes the handshake closes the downstream in time (UF)', async () => {
    const cluster = `outbound|${slowPort}||slow.tcp.example`
    const reply = await exchange(slowPort, 'hello?', { keepOpen: true })
    expect(reply.text).toBe('')
    expect(reply.error).not.toBe('timeout')
    expect(reply.ms).toBeGreaterThanOrEqual(250)
    expect(reply.ms).toBeLessThan(3_000)
    await logged(`${cluster}: UF upstream_connect_failure{connect timeout}`)
    expect(await clusterStat(cluster, 'tcp_cx_connect_fail')).toBe(1)
    expect(await clusterStat(cluster, 'tcp_cx_connect_fail', `127.0.0.1:${blackhole.port}`)).toBe(1)
    // The abandoned attempt gave its slot back.
    await eventually(async () => (await clusterStat(cluster, 'tcp_cx_active')) === 0)
  })

  it('a refused connect counts as a connect failure of the cluster and of the endpoint', async () => {
    const cluster = `outbound|${deadPort}||dead.tcp.example`
    const before = await clusterStat(cluster, 'tcp_cx_connect_fail')
    await exchange(deadPort, 'x', { keepOpen: true })
    await eventually(async () => (await clusterStat(cluster, 'tcp_cx_connect_fail')) === before + 1)
    expect(await clusterStat(cluster, 'tcp_cx_connect_fail', `127.0.0.1:${closedPort}`)).toBe(before + 1)
    expect(await clusterStat(cluster, 'cx_connect_fail', `127.0.0.1:${closedPort}`)).toBeGreaterThanOrEqual(
      before + 1,
    )
    expect(await clusterStat(cluster, 'tcp_cx_active')).toBe(0)
  })

  it('maxConnectionDuration closes a busy connection once it is reached', async () => {
    const client = await openClient(agedPort)
    let i = 0
    const ticker = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write(`tick${i++};`)
    }, 100)
    try {
      await client.waitFor('tick0;')
      const { ms } = await Promise.race([
        client.closed,
        new Promise<{ ms: number }>((_, reject) => setTimeout(() => reject(new Error('not closed')), 4_000)),
      ])
      expect(ms).toBeGreaterThanOrEqual(550)
      expect(ms).toBeLessThan(3_000)
      expect(client.received()).toContain('tick3;')
    } finally {
      clearInterval(ticker)
    }
    await logged('max_duration_timeout')
  })
})
