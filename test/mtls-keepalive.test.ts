// Scenario: idle keep-alive connections under PeerAuthentication STRICT outlive the request-headers timeout as plain ones do (Envoy's idle timeout is the connection's clock between requests), while a silent or trickling mTLS client is still cut by it.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { type ClientHttp2Session, connect as h2Connect } from 'node:http2'
import { type Socket, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loopbackIngress, sidecar, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type TestCa, testCa } from './harness/tls-ca.ts'
import type { TestCert } from './harness/tls-cert.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** The bootstrap's requestHeadersTimeout here (60 s by default, which is when the bug closed idle mTLS connections). */
const HEADERS_TIMEOUT_MS = 2_000
/** How long the idle connections wait: three request-headers timeouts. */
const IDLE_MS = 3 * HEADERS_TIMEOUT_MS
/** The bootstrap's idleTimeout here (Envoy's 1 h by default): what closes a connection idle between requests. */
const IDLE_TIMEOUT_MS = 8_000
const CONNECTIONS = 5

let ca: TestCa
let client: TestCert
let certDir: string
let app: Upstream
let proxy: ProxyProcess
let strictHttp: number
let plainHttp: number
let https: number

beforeAll(async () => {
  ca = testCa('mtls-keepalive-root')
  client = ca.issue('sleep', ['URI:spiffe://cluster.local/ns/default/sa/sleep'])
  const server = ca.issue('reviews', ['URI:spiffe://cluster.local/ns/default/sa/reviews'])
  certDir = await mkdtemp(join(tmpdir(), 'outrigger-mtls-keepalive-'))
  await writeFile(join(certDir, 'root-cert.pem'), ca.cert)
  await writeFile(join(certDir, 'cert-chain.pem'), server.cert)
  await writeFile(join(certDir, 'key.pem'), server.key)
  const ingressCert = ca.issue('localhost', ['DNS:localhost'])
  await writeFile(join(certDir, 'ingress-cert.pem'), ingressCert.cert)
  await writeFile(join(certDir, 'ingress-key.pem'), ingressCert.key)
  app = await startUpstream('app')
  ;[strictHttp, plainHttp, https] = await freePorts(3)
  proxy = await startProxy({
    resources: {
      'all.yaml': yamlStream(
        sidecar({
          ingress: [
            loopbackIngress(strictHttp, app.port, 'HTTP', 'http-strict'),
            loopbackIngress(plainHttp, app.port, 'HTTP', 'http-plain'),
            {
              ...loopbackIngress(https, app.port, 'HTTPS', 'https'),
              tls: {
                mode: 'SIMPLE',
                serverCertificate: join(certDir, 'ingress-cert.pem'),
                privateKey: join(certDir, 'ingress-key.pem'),
              },
            },
          ],
        }),
        `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: workload, namespace: default}
spec:
  selector: {matchLabels: {app: test}}
  mtls: {mode: STRICT}
  portLevelMtls:
    ${plainHttp}: {mode: DISABLE}
    ${https}: {mode: DISABLE}
`,
      ),
    },
    extraBootstrap: `concurrency: 1
tls:
  certChain: ${join(certDir, 'cert-chain.pem')}
  privateKey: ${join(certDir, 'key.pem')}
  rootCert: ${join(certDir, 'root-cert.pem')}
limits:
  requestHeadersTimeout: ${HEADERS_TIMEOUT_MS / 1000}s
  idleTimeout: ${IDLE_TIMEOUT_MS / 1000}s
`,
  })
}, 60_000)

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
  if (certDir !== undefined) await rm(certDir, { recursive: true, force: true })
})

/** Every connection manager's `stat`, summed (admin /stats). */
async function httpStat(stat: string): Promise<number> {
  const text = await (await proxy.admin('/stats')).text()
  let sum = 0
  for (const m of text.matchAll(new RegExp(`^http\\..*\\.${stat}: (\\d+)$`, 'gm'))) sum += Number(m[1])
  return sum
}

const headerTimeouts = (): Promise<number> => httpStat('downstream_rq_header_timeout')

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A connection the client keeps open: `closed` tells whether the proxy closed it. */
interface Held {
  readonly socket: Socket
  closed: boolean
}

/** An Istio mTLS connection to the STRICT port, as the client's sidecar opens it for HTTP/1.1; resolves once secure. */
function mtlsConnect(alpn = ['istio-http/1.1']): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: strictHttp,
      key: client.key,
      cert: client.cert,
      ca: ca.cert,
      ALPNProtocols: alpn,
      // The server presents a SPIFFE identity, not a host name.
      checkServerIdentity: () => undefined,
    })
    const held: Held = { socket, closed: false }
    socket.on('close', () => {
      held.closed = true
    })
    socket.on('error', () => {})
    socket.once('secureConnect', () => resolve(held))
    socket.once('close', () => reject(new Error('closed before the handshake finished')))
  })
}

/** A TLS connection to the SIMPLE TLS ingress port (no client certificate); resolves once secure. */
function httpsConnect(): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: https, servername: 'localhost', ca: ca.cert })
    const held: Held = { socket, closed: false }
    socket.on('close', () => {
      held.closed = true
    })
    socket.on('error', () => {})
    socket.once('secureConnect', () => resolve(held))
    socket.once('close', () => reject(new Error('closed before the handshake finished')))
  })
}

function plainConnect(): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(plainHttp, '127.0.0.1')
    const held: Held = { socket, closed: false }
    socket.on('close', () => {
      held.closed = true
    })
    socket.on('error', () => {})
    socket.once('connect', () => resolve(held))
    socket.once('close', () => reject(new Error('closed before connecting')))
  })
}

/** One keep-alive GET on `held`; resolves with the status once the whole response (by content-length) is in. */
function get(held: Held): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = ''
    const { socket } = held
    const onData = (chunk: Buffer): void => {
      received += chunk.toString('latin1')
      const end = received.indexOf('\r\n\r\n')
      if (end === -1) return
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(received.slice(0, end))
      if (length === null || received.length < end + 4 + Number(length[1])) return
      done()
      resolve(Number(received.slice(9, 12)))
    }
    const onClose = (): void => {
      done()
      reject(new Error(`closed before the response ended: ${JSON.stringify(received)}`))
    }
    const done = (): void => {
      socket.off('data', onData)
      socket.off('close', onClose)
    }
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.write('GET /keepalive HTTP/1.1\r\nhost: app\r\n\r\n')
  })
}

/** Resolves with how long after `since` the proxy closed `held`, and what it sent first; rejects when it holds on past `withinMs`. */
function closedWithin(held: Held, since: number, withinMs: number): Promise<{ ms: number; reply: string }> {
  return new Promise((resolve, reject) => {
    let reply = ''
    held.socket.on('data', (d: Buffer) => {
      reply += d.toString('latin1')
    })
    const timer = setTimeout(() => reject(new Error('the proxy held the connection')), withinMs)
    const done = (): void => {
      clearTimeout(timer)
      resolve({ ms: performance.now() - since, reply })
    }
    if (held.closed) done()
    else held.socket.once('close', done)
  })
}

describe('idle keep-alive connections outlive the request-headers timeout', () => {
  it('HTTP/1.1 over STRICT mTLS, as plain HTTP/1.1 and HTTPS: open after 3 timeouts idle, serve again, then closed by the idle timeout', async () => {
    const before = await headerTimeouts()
    const idleClosedBefore = await httpStat('downstream_cx_idle_timeout')
    const mtls = await Promise.all(Array.from({ length: CONNECTIONS }, () => mtlsConnect()))
    const plain = await Promise.all(Array.from({ length: CONNECTIONS }, () => plainConnect()))
    const tls = await Promise.all(Array.from({ length: CONNECTIONS }, () => httpsConnect()))
    const all = [...mtls, ...plain, ...tls]
    try {
      expect(await Promise.all(all.map(get))).toEqual(all.map(() => 200))
      await sleep(IDLE_MS)
      expect(mtls.filter((h) => h.closed).length).toBe(0)
      expect(plain.filter((h) => h.closed).length).toBe(0)
      expect(tls.filter((h) => h.closed).length).toBe(0)
      expect(await Promise.all(all.map(get))).toEqual(all.map(() => 200))
      expect(await headerTimeouts()).toBe(before)
      // Idle again: now the idle timeout closes every one of them, counted as such.
      const since = performance.now()
      const closed = await Promise.all(all.map((h) => closedWithin(h, since, IDLE_TIMEOUT_MS * 2)))
      for (const { ms } of closed) expect(ms).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - 100)
      expect(await httpStat('downstream_cx_idle_timeout')).toBe(idleClosedBefore + all.length)
      expect(await headerTimeouts()).toBe(before)
    } finally {
      for (const h of all) h.socket.destroy()
    }
  }, 45_000)

  it('HTTP/2 over STRICT mTLS: the session stays open after 3 timeouts idle and serves again', async () => {
    const before = await headerTimeouts()
    const session: ClientHttp2Session = h2Connect(`https://127.0.0.1:${strictHttp}`, {
      key: client.key,
      cert: client.cert,
      ca: ca.cert,
      ALPNProtocols: ['istio-h2', 'h2'],
      checkServerIdentity: () => undefined,
    })
    let closed = false
    session.on('close', () => {
      closed = true
    })
    session.on('error', () => {})
    const status = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':path': '/keepalive', ':authority': 'app' })
        let code = 0
        stream.on('response', (headers) => {
          code = Number(headers[':status'])
        })
        stream.on('error', reject)
        stream.resume()
        stream.on('end', () => resolve(code))
      })
    try {
      expect(await status()).toBe(200)
      await sleep(IDLE_MS)
      expect(closed).toBe(false)
      expect(await status()).toBe(200)
      expect(await headerTimeouts()).toBe(before)
    } finally {
      session.destroy()
    }
  }, 30_000)
})

/** Sends a request head a byte every 200 ms, all but its final CRLF, until stopped or the connection closes. */
function trickleHead(held: Held): { sent(): number; stop(): void } {
  const head = 'GET /slow HTTP/1.1\r\nhost: app\r\nx-slow: yes\r\n\r\n'
  let sent = 0
  const timer = setInterval(() => {
    if (sent < head.length - 2 && !held.closed) held.socket.write(head[sent++])
  }, 200)
  return { sent: () => sent, stop: () => clearInterval(timer) }
}

describe('the request-headers timeout still cuts an mTLS client that sends no whole head', () => {
  it('one that completes the handshake and sends nothing is closed one timeout after accept, counted, as a plain one', async () => {
    for (const connect of [() => mtlsConnect(), plainConnect]) {
      const before = await headerTimeouts()
      const since = performance.now()
      const held = await connect()
      const { ms } = await closedWithin(held, since, HEADERS_TIMEOUT_MS * 3)
      expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100)
      expect(await headerTimeouts()).toBe(before + 1)
    }
  }, 30_000)

  it('one that trickles its first head a byte at a time is closed one timeout after accept, counted', async () => {
    const before = await headerTimeouts()
    const since = performance.now()
    const held = await mtlsConnect()
    const trickle = trickleHead(held)
    try {
      const { ms } = await closedWithin(held, since, HEADERS_TIMEOUT_MS * 3)
      expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100)
      expect(trickle.sent()).toBeGreaterThan(0)
      expect(await headerTimeouts()).toBe(before + 1)
    } finally {
      trickle.stop()
      held.socket.destroy()
    }
  }, 30_000)

  it('one that trickles a later head on its kept-alive connection gets 408 from the headers timeout, counted', async () => {
    const before = await headerTimeouts()
    const held = await mtlsConnect()
    expect(await get(held)).toBe(200)
    // Idle longer than the timeout first: only a head that is arriving is timed.
    await sleep(HEADERS_TIMEOUT_MS * 1.5)
    expect(held.closed).toBe(false)
    const since = performance.now()
    const trickle = trickleHead(held)
    try {
      const { ms, reply } = await closedWithin(held, since, HEADERS_TIMEOUT_MS * 4)
      expect(reply).toMatch(/^HTTP\/1\.1 408 /)
      expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100)
      expect(await headerTimeouts()).toBe(before + 1)
    } finally {
      trickle.stop()
      held.socket.destroy()
    }
  }, 30_000)
})
