// Scenario: one undeclared port sniffed for HTTP/1, TLS, HTTP/2 and raw TCP; server-first protocols with and without sniffing.

import { connect as connectHttp2 } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { createServer as createTlsServer, type Server as TlsServer, connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, send } from './harness/client.ts'
import { serviceEntry, sidecar, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import {
  bannerHandler,
  echoHandler,
  exchange,
  openClient,
  startTcpServer,
  type TcpServer,
} from './harness/tcp.ts'
import { selfSignedCert, type TestCert } from './harness/tls-cert.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let web: Upstream
let raw: TcpServer
let banner: TcpServer
let secure: TlsServer
let securePort: number
let cert: TestCert
/** Undeclared egress port shared by an HTTP, a TCP and a TLS service: sniffed. */
let mixedPort: number
/** Undeclared egress port of a server-first service: sniffed until the detection timeout. */
let silentPort: number
/** Egress port declared MYSQL: never sniffed. */
let mysqlPort: number
/** Undeclared ingress port. */
let ingressPort: number

const detectionTimeoutMs = 200

beforeAll(async () => {
  cert = selfSignedCert(['secure.example.com'])
  web = await startUpstream('web')
  raw = await startTcpServer('raw', echoHandler)
  banner = await startTcpServer('banner', bannerHandler)
  secure = createTlsServer({ key: cert.key, cert: cert.cert }, (socket) => {
    socket.on('error', () => socket.destroy())
    socket.end(`secure sni=${socket.servername}`)
  })
  await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve))
  securePort = (secure.address() as AddressInfo).port
  ;[mixedPort, silentPort, mysqlPort, ingressPort] = await freePorts(4)
  /** A ServiceEntry whose one port declares `protocol`, or none when it is ''. */
  const entry = (name: string, host: string, port: number, protocol: string, targetPort: number): string =>
    serviceEntry({
      name,
      hosts: [host],
      ports: [
        { number: port, name: `p${port}`, protocol: protocol === '' ? undefined : protocol, targetPort },
      ],
    })
  proxy = await startProxy({
    extraBootstrap: `protocolDetectionTimeout: ${detectionTimeoutMs}ms\n`,
    resources: {
      'sidecar.yaml': sidecar({
        ingress: [{ port: ingressPort, name: 'any', defaultEndpoint: `127.0.0.1:${raw.port}` }],
        egress: [{ port: mixedPort }, { port: silentPort }, { port: mysqlPort, protocol: 'MYSQL' }],
      }),
      'services.yaml': yamlStream(
        entry('web', 'web', mixedPort, 'HTTP', web.port),
        entry('raw', 'raw', mixedPort, 'TCP', raw.port),
        entry('secure', 'secure.example.com', mixedPort, 'TLS', securePort),
        entry('smtp', 'smtp', silentPort, '', banner.port),
        entry('db', 'db', mysqlPort, '', banner.port),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([web?.close(), raw?.close(), banner?.close()])
  secure?.close()
})

describe('protocol detection on an undeclared port', () => {
  it('serves HTTP/1 requests with the HTTP route table (by Host)', async () => {
    const reply = await send(mixedPort, 'web', '/sniffed?x=1')
    expect(reply.status).toBe(200)
    expect(echoed(reply)).toMatchObject({ name: 'web', url: '/sniffed?x=1' })
  })

  it('waits for a request line that arrives in pieces, and replays every sniffed byte', async () => {
    const client = await openClient(mixedPort)
    client.socket.write('GE')
    await new Promise((r) => setTimeout(r, 50))
    client.socket.write('T /pieces HTTP/1.1\r\nHo')
    await new Promise((r) => setTimeout(r, 50))
    client.socket.write('st: web\r\nConnection: close\r\n\r\n')
    await client.closed
    expect(client.received()).toMatch(/^HTTP\/1\.1 200 OK/)
    expect(client.received()).toContain('"url":"/pieces"')
  })

  it('serves requests pipelined in the sniffed bytes, then later ones on the same connection', async () => {
    const client = await openClient(mixedPort)
    client.socket.write('GET /first HTTP/1.1\r\nHost: web\r\n\r\nGET /second HTTP/1.1\r\nHost: web\r\n\r\n')
    await new Promise((r) => setTimeout(r, 100))
    client.socket.write('GET /third HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n')
    await client.closed
    const received = client.received()
    expect(received.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(3)
    const urls = [...received.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1])
    expect(urls).toEqual(['/first', '/second', '/third'])
  })

  it('routes a TLS ClientHello by its SNI to the TLS service', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      let got = ''
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: mixedPort,
        servername: 'secure.example.com',
        ca: cert.cert,
      })
      socket.on('data', (d: Buffer) => {
        got += d.toString()
      })
      socket.on('error', reject)
      socket.on('close', () => resolve(got))
    })
    expect(text).toBe('secure sni=secure.example.com')
  })

  it('proxies anything else as opaque TCP, with the sniffed bytes first', async () => {
    expect((await exchange(mixedPort, 'hello raw tcp')).text).toBe('hello raw tcp')
    // Starts like a method, but is not an HTTP/1 request line.
    expect((await exchange(mixedPort, 'GETTING STARTED\n')).text).toBe('GETTING STARTED\n')
    expect((await exchange(mixedPort, 'GET /x HTTP/9.9\r\n\r\n')).text).toBe('GET /x HTTP/9.9\r\n\r\n')
  })

  it('serves an HTTP/2 preface (prior knowledge) with the HTTP/2 codec, routing by :authority', async () => {
    const session = connectHttp2(`http://127.0.0.1:${mixedPort}`)
    try {
      const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/over-h2', ':authority': 'web' })
        let status = 0
        let body = ''
        stream.on('response', (h) => {
          status = Number(h[':status'])
        })
        stream.setEncoding('utf8')
        stream.on('data', (c: string) => {
          body += c
        })
        stream.on('end', () => resolve({ status, body }))
        stream.on('error', reject)
      })
      expect(reply.status).toBe(200)
      expect(JSON.parse(reply.body)).toMatchObject({ name: 'web', url: '/over-h2' })
    } finally {
      session.close()
    }
  })

  it('serves a silent client (a server-first protocol) as TCP once the detection timeout passes', async () => {
    const client = await openClient(silentPort)
    const started = performance.now()
    await client.waitFor('220 banner ready')
    expect(performance.now() - started).toBeGreaterThanOrEqual(detectionTimeoutMs - 20)
    client.socket.write('EHLO outrigger\r\n')
    await client.waitFor('EHLO outrigger')
    client.socket.destroy()
  })

  it('never sniffs a port declared as a server-first protocol (MYSQL)', async () => {
    const client = await openClient(mysqlPort)
    const started = performance.now()
    await client.waitFor('220 banner ready')
    expect(performance.now() - started).toBeLessThan(detectionTimeoutMs)
    client.socket.destroy()
  })

  it('sniffs an undeclared ingress port too (raw bytes to the defaultEndpoint)', async () => {
    const reply = await exchange(ingressPort, 'inbound raw')
    expect(reply).toMatchObject({ text: 'inbound raw', ended: true })
  })
})
