// Scenario: WebSocket (and other HTTP/1.1 Upgrade tokens) through egress and ingress listeners, routed like requests.

import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect as connectHttp2 } from 'node:http2'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { serviceEntry, sidecar, virtualService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { openClient } from './harness/tcp.ts'

let proxy: ProxyProcess
let upstream: Server
let wss: WebSocketServer
let upstreamPort: number
let egressPort: number
let sniffedPort: number
let ingressPort: number
let closedPort: number

/** The upstream: WebSocket echo (its first message says what request it saw), `Upgrade: foo` echoes raw bytes, `bar` is refused. */
function onUpgrade(req: IncomingMessage, duplex: Duplex, head: Buffer): void {
  const socket = duplex as Socket
  socket.on('error', () => socket.destroy())
  const token = (req.headers.upgrade ?? '').toLowerCase()
  if (token === 'websocket') {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ url: req.url, host: req.headers.host, route: req.headers['x-route'] ?? null }))
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : data.toString()))
    })
  } else if (token === 'foo') {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
    if (head.length > 0) socket.write(head)
    socket.pipe(socket)
  } else {
    socket.end(
      'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nconnection: close\r\n\r\nno bar',
    )
  }
}

interface Session {
  readonly messages: string[]
  readonly ws: WebSocket
  next(): Promise<string>
}

/** Opens a WebSocket through the proxy; rejects with the HTTP status when the handshake is answered otherwise. */
function openWs(port: number, path: string, host: string): Promise<Session> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host }, handshakeTimeout: 5_000 })
    const messages: string[] = []
    const waiting: ((m: string) => void)[] = []
    ws.on('message', (data) => {
      const text = data.toString()
      const waiter = waiting.shift()
      if (waiter !== undefined) waiter(text)
      else messages.push(text)
    })
    ws.on('open', () =>
      resolve({
        ws,
        messages,
        next: () => {
          const queued = messages.shift()
          return queued !== undefined ? Promise.resolve(queued) : new Promise((r) => waiting.push(r))
        },
      }),
    )
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (d: Buffer) => {
        body += d.toString()
      })
      res.on('end', () => reject(new Error(`${res.statusCode} ${body}`)))
    })
    ws.on('error', reject)
  })
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.on('close', (code) => resolve(code)))
}

beforeAll(async () => {
  wss = new WebSocketServer({ noServer: true })
  upstream = createServer((_req, res) => res.end('plain http'))
  upstream.on('upgrade', onUpgrade)
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  upstreamPort = (upstream.address() as AddressInfo).port
  ;[egressPort, sniffedPort, ingressPort, closedPort] = await freePorts(4)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({
        ingress: [
          { port: ingressPort, protocol: 'HTTP', name: 'http', defaultEndpoint: `127.0.0.1:${upstreamPort}` },
        ],
        egress: [{ port: egressPort, protocol: 'HTTP', name: 'http' }, { port: sniffedPort }],
      }),
      'services.yaml': yamlStream(
        serviceEntry({
          name: 'chat',
          ports: [
            { number: egressPort, name: 'http', protocol: 'HTTP', targetPort: upstreamPort },
            { number: sniffedPort, name: 'any', targetPort: upstreamPort },
          ],
        }),
        serviceEntry({
          name: 'gone',
          ports: [{ number: egressPort, name: 'http', protocol: 'HTTP', targetPort: closedPort }],
        }),
        virtualService({
          hosts: ['chat'],
          http: [
            {
              match: [{ uri: { prefix: '/chat' } }],
              route: [{ destination: { host: 'chat', port: { number: egressPort } } }],
              headers: { request: { set: { 'x-route': 'chat' } } },
            },
            {
              match: [{ uri: { prefix: '/any' } }],
              route: [{ destination: { host: 'chat', port: { number: sniffedPort } } }],
            },
          ],
        }),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  wss?.close()
  upstream?.closeAllConnections()
  await new Promise<void>((resolve) => upstream?.close(() => resolve()))
})

describe('WebSocket', () => {
  it('echoes through an egress listener, routed by Host and path with the route header edits', async () => {
    const session = await openWs(egressPort, '/chat/room?x=1', 'chat')
    expect(JSON.parse(await session.next())).toEqual({ url: '/chat/room?x=1', host: 'chat', route: 'chat' })
    session.ws.send('hello')
    expect(await session.next()).toBe('hello')
    const big = 'x'.repeat(256 * 1024)
    session.ws.send(big)
    expect(await session.next()).toBe(big)
    const code = closed(session.ws)
    session.ws.close(1000)
    expect(await code).toBe(1000)
  })

  it('answers an upgrade with no matching route like any request (404)', async () => {
    await expect(openWs(egressPort, '/elsewhere', 'chat')).rejects.toThrow(/^404/)
  })

  it('answers 503 UF when the upstream refuses the connection', async () => {
    await expect(openWs(egressPort, '/', 'gone')).rejects.toThrow(/^503 upstream connect error/)
  })

  it('echoes through a sniffed (undeclared) egress port', async () => {
    const session = await openWs(sniffedPort, '/any', 'chat')
    expect(JSON.parse(await session.next())).toMatchObject({ url: '/any', route: null })
    session.ws.send('sniffed')
    expect(await session.next()).toBe('sniffed')
    session.ws.close()
  })

  it('echoes through an ingress listener', async () => {
    const session = await openWs(ingressPort, '/inbound', 'app')
    expect(JSON.parse(await session.next())).toMatchObject({ url: '/inbound', host: 'app' })
    session.ws.send('inbound')
    expect(await session.next()).toBe('inbound')
    session.ws.close()
  })
})

/** A WebSocket over HTTP/2 (RFC 8441 extended CONNECT) with hand-made frames: masked text out, unmasked in. */
interface H2WebSocket {
  readonly status: number
  readonly settingsAllowConnect: boolean
  send(text: string): void
  next(): Promise<string>
  close(): void
}

async function openH2Ws(port: number, path: string, authority: string): Promise<H2WebSocket> {
  const session = connectHttp2(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()))
  const settingsAllowConnect = session.remoteSettings.enableConnectProtocol === true
  const stream = session.request({
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'http',
    ':path': path,
    ':authority': authority,
    'sec-websocket-version': '13',
  })
  stream.on('error', () => {})
  const status = await new Promise<number>((resolve, reject) => {
    stream.once('response', (h) => resolve(Number(h[':status'])))
    stream.once('close', () => reject(new Error(`stream closed (rst ${stream.rstCode})`)))
  })
  let buffered = Buffer.alloc(0)
  const texts: string[] = []
  const waiting: ((t: string) => void)[] = []
  stream.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    // Unmasked server frames with payloads under 126 bytes are all these tests exchange.
    while (buffered.length >= 2 && buffered.length >= 2 + (buffered[1] & 0x7f)) {
      const length = buffered[1] & 0x7f
      const text = buffered.subarray(2, 2 + length).toString()
      buffered = buffered.subarray(2 + length)
      const waiter = waiting.shift()
      if (waiter !== undefined) waiter(text)
      else texts.push(text)
    }
  })
  return {
    status,
    settingsAllowConnect,
    send(text: string) {
      const payload = Buffer.from(text)
      const mask = Buffer.from([1, 2, 3, 4])
      const masked = payload.map((b, i) => b ^ mask[i % 4])
      stream.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]))
    },
    next() {
      const queued = texts.shift()
      return queued !== undefined ? Promise.resolve(queued) : new Promise((r) => waiting.push(r))
    },
    close() {
      stream.close()
      session.close()
    },
  }
}

describe('WebSocket over HTTP/2 (extended CONNECT)', () => {
  it('is routed by :authority and path to an HTTP/1.1 WebSocket upstream, answered 200, and echoes', async () => {
    const ws = await openH2Ws(egressPort, '/chat/h2', 'chat')
    try {
      expect(ws.settingsAllowConnect).toBe(true)
      expect(ws.status).toBe(200)
      expect(JSON.parse(await ws.next())).toEqual({ url: '/chat/h2', host: 'chat', route: 'chat' })
      ws.send('over h2')
      expect(await ws.next()).toBe('over h2')
    } finally {
      ws.close()
    }
  })

  it('works through an ingress listener too', async () => {
    const ws = await openH2Ws(ingressPort, '/inbound-h2', 'app')
    try {
      expect(ws.status).toBe(200)
      expect(JSON.parse(await ws.next())).toMatchObject({ url: '/inbound-h2', host: 'app' })
      ws.send('inbound')
      expect(await ws.next()).toBe('inbound')
    } finally {
      ws.close()
    }
  })

  it('answers an extended CONNECT with no route 404, like any request', async () => {
    const ws = await openH2Ws(egressPort, '/elsewhere', 'chat')
    expect(ws.status).toBe(404)
    ws.close()
  })
})

describe('other Upgrade tokens', () => {
  it('passes an upgrade the upstream accepts (101) through as a byte tunnel', async () => {
    const client = await openClient(egressPort)
    client.socket.write('GET /chat HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
    await client.waitFor('\r\n\r\n')
    expect(client.received()).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/)
    expect(client.received().toLowerCase()).toContain('upgrade: foo')
    client.socket.write('raw bytes after the switch')
    await client.waitFor('raw bytes after the switch')
    client.socket.end()
    expect((await client.closed).ended).toBe(true)
  })

  it('serves an h2c upgrade request as plain HTTP/1.1, as Envoy does', async () => {
    const client = await openClient(egressPort)
    client.socket.write(
      'GET /chat HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n' +
        'HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
    )
    await client.waitFor('plain http')
    expect(client.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    client.socket.destroy()
  })

  it("relays the upstream's answer and closes when it does not switch", async () => {
    const client = await openClient(egressPort)
    client.socket.write('GET /chat HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: bar\r\n\r\n')
    const { ended } = await client.closed
    expect(ended).toBe(true)
    expect(client.received()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
    expect(client.received().toLowerCase()).toContain('connection: close')
    expect(client.received()).toMatch(/\r\n\r\nno bar$/)
  })
})
