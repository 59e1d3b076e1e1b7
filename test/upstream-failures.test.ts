// Scenario: misbehaving upstreams and malformed downstream requests get Envoy's answers and never crash the proxy.

import { STATUS_CODES } from 'node:http'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, send, sendRaw } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const resetBefore = 'upstream connect error or disconnect/reset before headers. reset reason: '

let proxy: ProxyProcess
let egress: number
let closedPort: number
/** An echo upstream: the healthy control for "the proxy keeps serving". */
let healthy: Upstream
/** An HTTP upstream that fails in the way its path names. */
let flaky: Upstream
/** A TCP server that answers every request with whatever bytes `garbage` is set to, then closes. */
let raw: NetServer
let rawPort: number
let garbage = ''

/** /reset sends a TCP RST; /close sends a FIN; /midbody and /midbody-chunked die after some body; else echo. */
function startFlaky(): Promise<Upstream> {
  return startUpstream('flaky', (req, res) => {
    const socket = req.socket
    switch (req.url) {
      case '/reset':
        req.resume()
        req.on('end', () => socket.resetAndDestroy())
        return
      case '/close':
        req.resume()
        req.on('end', () => socket.end())
        return
      case '/midbody':
      case '/midbody-chunked':
        req.resume()
        res.writeHead(200, req.url === '/midbody' ? { 'content-length': '100000' } : {})
        res.write(Buffer.alloc(1000, 'x'))
        setTimeout(() => socket.destroy(), 50)
        return
      default: {
        req.resume()
        const body = JSON.stringify({ name: 'flaky', method: req.method, url: req.url, headers: req.headers })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      }
    }
  })
}

function startRaw(): Promise<NetServer> {
  const server = createNetServer((socket: Socket) => {
    socket.on('error', () => {})
    socket.once('data', () => socket.end(garbage))
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

/** A normal request through the proxy, to show it still serves after whatever came before. */
async function expectStillServing(): Promise<void> {
  const reply = await send(egress, 'healthy', '/after')
  expect(reply.status).toBe(200)
  expect(echoed(reply).url).toBe('/after')
  expect(proxy.child.exitCode).toBeNull()
}

/** Splits a raw HTTP/1.1 response into its status code, lowercase headers and body. */
function parseRaw(text: string): { status: number; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n')
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) }
}

beforeAll(async () => {
  healthy = await startUpstream('healthy')
  flaky = await startFlaky()
  raw = await startRaw()
  rawPort = (raw.address() as { port: number }).port
  ;[egress, closedPort] = await freePorts(2)
  /** The egress port as a service's HTTP port, served on `targetPort`. */
  const httpPort = (targetPort: number): istio.ServicePort => ({
    number: egress,
    name: 'http',
    protocol: 'HTTP',
    targetPort,
  })
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.egressSidecar(egress),
      'services.yaml': istio.yamlStream(
        istio.serviceEntry({
          name: 'healthy',
          ports: [httpPort(healthy.port)],
          endpoints: [{ address: '127.0.0.1', labels: { version: 'v1' } }],
        }),
        istio.destinationRule({ host: 'healthy', subsets: istio.versionSubsets('v1', 'v2') }),
        istio.virtualService({
          hosts: ['healthy'],
          http: [
            { match: [{ uri: { prefix: '/v2' } }], route: istio.routeTo('healthy', 'v2') },
            { route: istio.routeTo('healthy', 'v1') },
          ],
        }),
        istio.serviceEntry({ name: 'flaky', ports: [httpPort(flaky.port)] }),
        istio.serviceEntry({ name: 'garbage', ports: [httpPort(rawPort)] }),
        istio.serviceEntry({ name: 'refused', ports: [httpPort(closedPort)] }),
        istio.serviceEntry({
          name: 'dns-endpoint',
          hosts: ['dns-endpoint.example.com'],
          resolution: 'DNS',
          ports: [{ number: egress, name: 'http', protocol: 'HTTP' }],
          endpoints: [{ address: 'localhost', ports: { http: healthy.port } }],
        }),
        istio.serviceEntry({
          name: 'dns-host',
          hosts: ['localhost'],
          resolution: 'DNS',
          ports: [httpPort(healthy.port)],
          endpoints: [],
        }),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([
    healthy?.close(),
    flaky?.close(),
    new Promise<void>((resolve) => (raw === undefined ? resolve() : raw.close(() => resolve()))),
  ])
})

describe('upstream resets and closes', () => {
  it('503 UC "connection termination" when the upstream closes (FIN) before headers', async () => {
    const reply = await send(egress, 'flaky', '/close')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}connection termination`)
    await expectStillServing()
  })

  it('503 UC "connection termination" when the upstream resets (RST) before headers', async () => {
    // Envoy's HTTP/1 codec client reports any remote close of a connected upstream, FIN or RST,
    // as ConnectionTermination; "remote reset" is a stream reset (HTTP/2 RST_STREAM).
    const reply = await send(egress, 'flaky', '/reset')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}connection termination`)
    await expectStillServing()
  })

  it('a request body already sent when the upstream resets still gets a local reply', async () => {
    const reply = await send(egress, 'flaky', '/reset', { method: 'POST', body: 'x'.repeat(10_000) })
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}connection termination`)
  })

  it('the client sees a truncated body when the upstream dies after headers (content-length)', async () => {
    const text = await sendRaw(egress, 'GET /midbody HTTP/1.1\r\nHost: flaky\r\n\r\n', 2_000)
    const { status, headers, body } = parseRaw(text)
    expect(status).toBe(200)
    expect(headers['content-length']).toBe('100000')
    expect(body.length).toBeGreaterThan(0)
    expect(body.length).toBeLessThan(100000)
    await expectStillServing()
    expect((await send(egress, 'flaky', '/ok')).status).toBe(200)
  })

  it('the client sees an unterminated chunked body when the upstream dies after headers', async () => {
    const text = await sendRaw(egress, 'GET /midbody-chunked HTTP/1.1\r\nHost: flaky\r\n\r\n', 2_000)
    const { status, headers, body } = parseRaw(text)
    expect(status).toBe(200)
    expect(headers['transfer-encoding']).toBe('chunked')
    expect(body).not.toMatch(/(^|\r\n)0\r\n\r\n$/)
    await expect(send(egress, 'flaky', '/midbody')).rejects.toThrow()
    await expectStillServing()
    expect((await send(egress, 'flaky', '/ok')).status).toBe(200)
  })
})

describe('malformed upstream responses', () => {
  it.each([
    ['not HTTP at all', 'SSH-2.0-OpenSSH_9.6\r\n\r\n'],
    ['a bad status line', 'HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n'],
    ['an invalid header name', 'HTTP/1.1 200 OK\r\nbad header: x\r\ncontent-length: 0\r\n\r\n'],
    ['conflicting content-lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab'],
  ])('502 UPE "protocol error" for %s', async (_what, bytes) => {
    garbage = bytes
    const reply = await send(egress, 'garbage', '/')
    expect(reply.status).toBe(502)
    expect(reply.body).toBe(`${resetBefore}protocol error`)
    await expectStillServing()
  })
})

describe('no upstream to reach', () => {
  it('503 UF "connection failure" when the connection is refused', async () => {
    const reply = await send(egress, 'refused', '/')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}connection failure`)
    await expectStillServing()
  })

  it('503 UH "no healthy upstream" for a DestinationRule subset with no endpoints', async () => {
    expect(echoed(await send(egress, 'healthy', '/v1')).name).toBe('healthy')
    const reply = await send(egress, 'healthy', '/v2')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe('no healthy upstream')
  })
})

describe('DNS resolution', () => {
  it('resolution: DNS resolves an endpoint address (localhost)', async () => {
    const reply = await send(egress, 'dns-endpoint.example.com', '/dns')
    expect(reply.status).toBe(200)
    expect(echoed(reply).name).toBe('healthy')
    expect(echoed(reply).headers.host).toBe('dns-endpoint.example.com')
  })

  // With no endpoints the host is resolved as written in the ServiceEntry (not its namespace FQDN).
  it('resolution: DNS with no endpoints resolves the host itself (localhost)', async () => {
    const reply = await send(egress, 'localhost', '/dns-host')
    expect(reply.status).toBe(200)
    expect(echoed(reply).url).toBe('/dns-host')
  })
})

describe('malformed downstream requests', () => {
  it.each([
    {
      what: 'garbage bytes (a TLS hello)',
      status: 400,
      bytes: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n',
    },
    {
      what: 'an invalid header name',
      status: 400,
      bytes: 'GET / HTTP/1.1\r\nHost: healthy\r\nBad Header: x\r\n\r\n',
    },
    {
      what: 'a header value with a control character',
      status: 400,
      bytes: 'GET / HTTP/1.1\r\nHost: healthy\r\nX-A: a\x01b\r\n\r\n',
    },
    {
      what: 'a header line without a colon',
      status: 400,
      bytes: 'GET / HTTP/1.1\r\nHost: healthy\r\nnocolon\r\n\r\n',
    },
    {
      what: 'content-length with transfer-encoding',
      status: 400,
      bytes:
        'POST / HTTP/1.1\r\nHost: healthy\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    },
    {
      what: 'a non-numeric content-length',
      status: 400,
      bytes: 'POST / HTTP/1.1\r\nHost: healthy\r\nContent-Length: abc\r\n\r\n',
    },
    {
      what: 'a bad chunk size',
      status: 400,
      bytes: 'POST / HTTP/1.1\r\nHost: healthy\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    },
    {
      what: 'one header over 60 KiB',
      status: 431,
      bytes: `GET / HTTP/1.1\r\nHost: healthy\r\nX-Big: ${'a'.repeat(61 * 1024)}\r\n\r\n`,
    },
    {
      what: 'headers over 60 KiB in total, with more bytes still unread',
      status: 431,
      bytes: `GET / HTTP/1.1\r\nHost: healthy\r\n${Array.from({ length: 1500 }, (_, i) => `X-H${i}: ${'v'.repeat(90)}\r\n`).join('')}\r\n`,
    },
  ])('$what: a clear $status, then the connection closes', async ({ bytes, status }) => {
    const text = await sendRaw(egress, Buffer.from(bytes, 'latin1'), 1_500)
    const reply = parseRaw(text)
    expect(reply.status).toBe(status)
    expect(reply.headers.connection).toBe('close')
    expect(reply.body).toBe(STATUS_CODES[status])
    await expectStillServing()
  })

  it('a large but legal header (12 KiB) still passes', async () => {
    const reply = await send(egress, 'healthy', '/big', { headers: { 'x-big': 'b'.repeat(12 * 1024) } })
    expect(reply.status).toBe(200)
    expect(echoed(reply).headers['x-big']).toHaveLength(12 * 1024)
  })

  it('a bad request after a good one on a keep-alive connection only ends that connection', async () => {
    const text = await sendRaw(
      egress,
      'GET /first HTTP/1.1\r\nHost: healthy\r\n\r\nGET / HTTP/1.1\r\nHost: healthy\r\nBad Header: x\r\n\r\n',
      1_000,
    )
    expect(text).toMatch(/^HTTP\/1\.1 200 /)
    expect(text).toContain('"url":"/first"')
    expect(text).toContain('HTTP/1.1 400 ')
    await expectStillServing()
  })

  it('the proxy logged no uncaught errors throughout', () => {
    expect(proxy.child.exitCode).toBeNull()
    expect(proxy.stderr()).not.toMatch(/uncaught|unhandled rejection/)
  })
})
