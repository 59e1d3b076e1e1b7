// Scenario: two sidecars in front of two apps on loopback with certificates from `outrigger ca`: Istio mTLS for HTTP/1.1, h2, gRPC, TCP and WebSocket, refusals, and rotation under load.

import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { Pool, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { echoed, send, sendRaw } from './harness/client.ts'
import { EchoClient, type EchoServer, startEchoServer } from './harness/grpc.ts'
import { closeSession, type H2Upstream, h2Request, h2Session, startH2Upstream } from './harness/h2.ts'
import { createMeshCa, filesTls, type MeshCa, strictMtls } from './harness/mesh.ts'
import { type PortTable, startClientSidecar, startServerSidecar } from './harness/mesh-pair.ts'
import { eventually, type ProxyProcess } from './harness/proxy-process.ts'
import { exchange, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep'
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews'
const VERIFY_FAILED = 'CERTIFICATE_VERIFY_FAILED'

let ca: MeshCa
let otherCa: MeshCa
let httpApp: Upstream
let h2App: H2Upstream
let grpcApp: EchoServer
let tcpApp: TcpServer
let wsApp: Server
let wsPort: number
let server: ProxyProcess
let client: ProxyProcess
let imposter: ProxyProcess
const port: PortTable = {}

/** XFCC's Hash: the SHA-256 of the leaf's DER, in hex. */
function certHash(certs: string): string {
  const leaf = new X509Certificate(readFileSync(join(certs, 'cert-chain.pem')))
  return createHash('sha256').update(leaf.raw).digest('hex')
}

function leafSerial(certs: string): string {
  return new X509Certificate(readFileSync(join(certs, 'cert-chain.pem'))).serialNumber.toLowerCase()
}

/** The serial of the workload certificate a proxy serves now (admin /certs, Envoy's shape). */
async function servedSerial(proxy: ProxyProcess): Promise<string> {
  const res = await proxy.admin('/certs')
  const body = (await res.json()) as { certificates: { cert_chain: { serial_number: string }[] }[] }
  return body.certificates[0]?.cert_chain[0]?.serial_number ?? ''
}

const sameSerial = (a: string, b: string): boolean => a.replace(/^0+/, '') === b.replace(/^0+/, '')

/** The WebSocket app: its first message is the XFCC header it saw, then it echoes. */
async function startWsApp(): Promise<void> {
  const wss = new WebSocketServer({ noServer: true })
  wsApp = createServer((_req, res) => res.end('not a websocket'))
  wsApp.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ xfcc: req.headers['x-forwarded-client-cert'] ?? null }))
      ws.on('message', (data) => ws.send(data.toString()))
    })
  })
  await new Promise<void>((resolve) => wsApp.listen(0, '127.0.0.1', resolve))
  wsPort = (wsApp.address() as { port: number }).port
}

/** Opens a WebSocket through `port`, returns its first two messages (the app's XFCC line, then the echo of `text`). */
function wsRoundTrip(listenPort: number, host: string, text: string): Promise<[string, string]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${listenPort}/chat`, {
      headers: { host },
      handshakeTimeout: 5_000,
    })
    const got: string[] = []
    ws.on('message', (data) => {
      got.push(data.toString())
      if (got.length === 1) ws.send(text)
      if (got.length === 2) {
        ws.close()
        resolve([got[0], got[1]])
      }
    })
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)))
    ws.on('error', reject)
  })
}

interface LoadResult {
  ok: number
  failed: number
  readonly errors: string[]
}

/**
 * Sends GETs to `listenPort` with Host `host` from `workers` loops until `durationMs` has passed: even
 * workers reuse keep-alive connections, odd ones open a new connection per request.
 */
async function load(listenPort: number, host: string, durationMs: number, workers = 6): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, errors: [] }
  const origin = `http://127.0.0.1:${listenPort}`
  const keepAlive = new Pool(origin, { connections: workers })
  const end = Date.now() + durationMs
  const loop = async (fresh: boolean): Promise<void> => {
    while (Date.now() < end) {
      try {
        const res = await request(`${origin}/load`, {
          headers: { host },
          ...(fresh ? { reset: true } : { dispatcher: keepAlive }),
        })
        const body = await res.body.text()
        if (res.statusCode === 200) result.ok++
        else {
          result.failed++
          result.errors.push(`${res.statusCode} ${body.slice(0, 200)}`)
        }
      } catch (err) {
        result.failed++
        result.errors.push((err as Error).message)
      }
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: workers }, (_, i) => loop(i % 2 === 1)))
  await keepAlive.close()
  const seconds = (performance.now() - started) / 1000
  console.info(
    `load on :${listenPort}: ${result.ok} ok, ${result.failed} failed, ${Math.round(result.ok / seconds)} req/s`,
  )
  return result
}

/** Replaces a certificate directory's files the way a rotator does: each file renamed into place. */
function replaceFiles(target: string, fresh: string): void {
  for (const name of ['cert-chain.pem', 'key.pem']) {
    const staged = join(target, `.${name}.new`)
    writeFileSync(staged, readFileSync(join(fresh, name)))
    renameSync(staged, join(target, name))
  }
}

let sleepCerts: string
let reviewsCerts: string

beforeAll(async () => {
  ca = await createMeshCa('outrigger-mesh-')
  sleepCerts = ca.issue(SLEEP, 'sleep')
  reviewsCerts = ca.issue(REVIEWS, 'reviews')
  otherCa = await createMeshCa('outrigger-mesh-other-')
  const imposterCerts = otherCa.issue(SLEEP, 'imposter')
  // The imposter trusts the mesh's root too, so the server's refusal (not the imposter's) is what fails.
  const imposterTrust = join(ca.dir, 'imposter-trust.pem')
  writeFileSync(
    imposterTrust,
    readFileSync(join(ca.caDir, 'root-cert.pem'), 'utf8') +
      readFileSync(join(otherCa.caDir, 'root-cert.pem'), 'utf8'),
  )

  httpApp = await startUpstream('reviews')
  h2App = await startH2Upstream('reviews-h2')
  grpcApp = await startEchoServer('reviews-grpc')
  tcpApp = await startTcpServer('reviews-tcp')
  await startWsApp()
  server = await startServerSidecar({
    ports: port,
    inbound: [
      { port: 'inHttp', appPort: httpApp.port, protocol: 'HTTP', name: 'http' },
      { port: 'inH2', appPort: h2App.port, protocol: 'HTTP2', name: 'h2' },
      { port: 'inGrpc', appPort: grpcApp.port, protocol: 'GRPC', name: 'grpc' },
      { port: 'inTcp', appPort: tcpApp.port, protocol: 'TCP', name: 'tcp' },
      { port: 'inWs', appPort: wsPort, protocol: 'HTTP', name: 'ws' },
      { port: 'inPermissive', appPort: httpApp.port, protocol: 'HTTP', name: 'permissive' },
    ],
    // security/v1beta1/peer_authentication.proto: the workload's mode, one port relaxed by portLevelMtls.
    policies: () => [strictMtls('reviews', [port.inPermissive])],
    tls: filesTls(reviewsCerts),
  })

  client = await startClientSidecar({
    ports: port,
    routes: [
      // A few requests per connection, so that load opens new mTLS connections while certificates rotate.
      {
        listen: 'outHttp',
        name: 'http',
        host: 'reviews',
        protocol: 'HTTP',
        target: 'inHttp',
        istioMutual: { connectionPool: { http: { maxRequestsPerConnection: 20 } } },
      },
      { listen: 'outH2', name: 'h2', host: 'reviews-h2', protocol: 'HTTP2', target: 'inH2' },
      { listen: 'outGrpc', name: 'grpc', host: 'reviews-grpc', protocol: 'GRPC', target: 'inGrpc' },
      { listen: 'outTcp', name: 'tcp', host: 'reviews-tcp', protocol: 'TCP', target: 'inTcp' },
      { listen: 'outWs', name: 'ws', host: 'reviews-ws', protocol: 'HTTP', target: 'inWs' },
      // Auto-mTLS: no DestinationRule, the endpoint carries Istio's tlsMode label.
      {
        listen: 'outAuto',
        name: 'auto',
        host: 'reviews-auto',
        protocol: 'HTTP',
        target: 'inHttp',
        endpoint: { serviceAccount: 'reviews', labels: { 'security.istio.io/tlsMode': 'istio' } },
        istioMutual: false,
      },
      // The endpoint runs as ratings: a server presenting reviews' identity is not the one expected.
      {
        listen: 'outWrong',
        name: 'wrong',
        host: 'reviews-wrong',
        protocol: 'HTTP',
        target: 'inHttp',
        endpoint: { serviceAccount: 'ratings' },
      },
      {
        listen: 'outPlain',
        name: 'plain',
        host: 'reviews-plain',
        protocol: 'HTTP',
        target: 'inPermissive',
        endpoint: {},
        istioMutual: false,
      },
      {
        listen: 'outPlainStrict',
        name: 'plain-strict',
        host: 'reviews-plain-strict',
        protocol: 'HTTP',
        target: 'inHttp',
        endpoint: {},
        istioMutual: false,
      },
    ],
    tls: filesTls(sleepCerts),
  })

  imposter = await startClientSidecar({
    ports: port,
    routes: [{ listen: 'outImposter', name: 'http', host: 'reviews', protocol: 'HTTP', target: 'inHttp' }],
    tls: filesTls(imposterCerts, imposterTrust),
  })
}, 120_000)

afterAll(async () => {
  await imposter?.stop()
  await client?.stop()
  await server?.stop()
  await httpApp?.close()
  await h2App?.close()
  await grpcApp?.close()
  await tcpApp?.close()
  wsApp?.closeAllConnections()
  await new Promise((r) => wsApp?.close(r))
  await otherCa?.remove()
  await ca?.remove()
})

/** The server sidecar's refusals on one ingress port, by reason (admin /listeners). */
async function refusals(listenPort: number): Promise<Record<string, number>> {
  const res = await server.admin('/listeners?format=json')
  const listeners = (await res.json()) as { address: string; mtls?: { refused: Record<string, number> } }[]
  return listeners.find((l) => l.address === `127.0.0.1:${listenPort}`)?.mtls?.refused ?? {}
}

const xfccOf = (certs: string): RegExp =>
  new RegExp(`^By=${REVIEWS};Hash=${certHash(certs)};Subject="";URI=${SLEEP}$`)

describe('two sidecars over Istio mTLS, certificates from outrigger ca', () => {
  it('HTTP/1.1: the app behind the STRICT sidecar gets the client identity in XFCC', async () => {
    const reply = await send(port.outHttp, 'reviews', '/pair')
    expect(reply.status).toBe(200)
    expect(echoed(reply).headers['x-forwarded-client-cert']).toMatch(xfccOf(sleepCerts))
  })

  it('h2: a request passes both sidecars over istio-h2 with the client identity in XFCC', async () => {
    const session = await h2Session(port.outH2)
    try {
      const reply = await h2Request(session, { ':method': 'GET', ':path': '/h2', ':authority': 'reviews-h2' })
      expect(reply.status).toBe(201)
      const saw = JSON.parse(reply.body.toString()) as {
        httpVersion: string
        headers: Record<string, string>
      }
      expect(saw.httpVersion).toBe('2.0')
      expect(saw.headers['x-forwarded-client-cert']).toMatch(xfccOf(sleepCerts))
    } finally {
      await closeSession(session)
    }
  })

  it('gRPC (@grpc/grpc-js): a unary call passes both sidecars with its trailers', async () => {
    const grpc = new EchoClient(port.outGrpc, 'reviews-grpc')
    try {
      const outcome = await grpc.unary({ text: 'paired' })
      expect(outcome.status.code).toBe(0)
      expect(outcome.replies[0]).toMatchObject({ text: 'paired' })
    } finally {
      grpc.close()
    }
  })

  it('TCP: bytes pass both sidecars', async () => {
    const reply = await exchange(port.outTcp, 'tcp over the pair')
    expect(reply.text).toBe('tcp over the pair')
    expect(reply.ended).toBe(true)
  })

  it('WebSocket: the upgrade goes out over the endpoint mTLS and the app sees the client identity', async () => {
    const [first, echo] = await wsRoundTrip(port.outWs, 'reviews-ws', 'hello over mTLS')
    expect((JSON.parse(first) as { xfcc: string }).xfcc).toMatch(xfccOf(sleepCerts))
    expect(echo).toBe('hello over mTLS')
  })

  it('auto-mTLS: an endpoint labelled security.istio.io/tlsMode=istio gets ISTIO_MUTUAL without a DestinationRule', async () => {
    const reply = await send(port.outAuto, 'reviews-auto', '/auto')
    expect(reply.status).toBe(200)
    expect(echoed(reply).headers['x-forwarded-client-cert']).toMatch(xfccOf(sleepCerts))
  })

  it('STRICT refuses plain text: from an app that skips its sidecar, and from a sidecar told to send plain text', async () => {
    const before = (await refusals(port.inHttp)).plaintext ?? 0
    expect(await sendRaw(port.inHttp, 'GET / HTTP/1.1\r\nhost: reviews\r\n\r\n')).toBe('')
    const reply = await send(port.outPlainStrict, 'reviews-plain-strict', '/plain')
    expect(reply.status).toBe(503)
    expect(((await refusals(port.inHttp)).plaintext ?? 0) - before).toBeGreaterThanOrEqual(2)
  })

  it('PERMISSIVE (portLevelMtls) serves plain text without XFCC, and mTLS with it', async () => {
    const plain = await send(port.outPlain, 'reviews-plain', '/plain')
    expect(plain.status).toBe(200)
    expect(echoed(plain).headers['x-forwarded-client-cert']).toBeUndefined()
    const direct = await send(port.inPermissive, 'reviews', '/direct', {
      headers: { 'x-forwarded-client-cert': 'By=forged' },
    })
    expect(direct.status).toBe(200)
    expect(echoed(direct).headers['x-forwarded-client-cert']).toBeUndefined()
  })

  it('a server whose SPIFFE ID is not the one expected for the endpoint is refused: 503 UF, certificate verify failed', async () => {
    const reply = await send(port.outWrong, 'reviews-wrong', '/wrong')
    expect(reply.status).toBe(503)
    expect(reply.body).toContain(VERIFY_FAILED)
  })

  it('a WebSocket upgrade to that endpoint fails the same way (503 with the transport failure reason)', async () => {
    const answer = await sendRaw(
      port.outWrong,
      'GET /chat HTTP/1.1\r\nhost: reviews-wrong\r\nconnection: upgrade\r\nupgrade: websocket\r\n' +
        'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    )
    expect(answer).toMatch(/^HTTP\/1\.1 503 /)
    expect(answer).toContain(VERIFY_FAILED)
  })

  it('a client certificate from another root is refused by the STRICT server (untrusted), other clients unaffected', async () => {
    const before = (await refusals(port.inHttp)).untrusted_client_certificate ?? 0
    const reply = await send(port.outImposter, 'reviews', '/imposter')
    expect(reply.status).toBe(503)
    await eventually(async () => ((await refusals(port.inHttp)).untrusted_client_certificate ?? 0) > before)
    expect((await send(port.outHttp, 'reviews', '/still')).status).toBe(200)
  })
})

describe('certificate rotation under continuous load', () => {
  it('files replaced on both sides during load: zero failed requests, new handshakes use the new certificates', async () => {
    const newReviews = ca.issue(REVIEWS, 'reviews-2')
    const newSleep = ca.issue(SLEEP, 'sleep-2')
    const running = load(port.outHttp, 'reviews', 8_000)
    await new Promise((r) => setTimeout(r, 2_000))
    replaceFiles(reviewsCerts, newReviews)
    await new Promise((r) => setTimeout(r, 2_000))
    replaceFiles(sleepCerts, newSleep)
    const result = await running
    expect(result.errors.slice(0, 5)).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.ok).toBeGreaterThan(400)
    expect(sameSerial(await servedSerial(server), leafSerial(newReviews))).toBe(true)
    expect(sameSerial(await servedSerial(client), leafSerial(newSleep))).toBe(true)
    // The server saw the client's new certificate on connections opened after the swap.
    const hashes = new Set(
      httpApp.seen.map((r) => /Hash=([0-9a-f]+)/.exec(String(r.headers['x-forwarded-client-cert']))?.[1]),
    )
    expect(hashes.has(certHash(newSleep))).toBe(true)
  }, 40_000)

  it('built-in renewal (tls: {ca, ttl: 6s}) on both sides during load: zero failed requests', async () => {
    const app = await startUpstream('renewed')
    const renewedPorts: PortTable = {}
    const builtIn = ca.builtInTls('6s')
    const renewedServer = await startServerSidecar({
      ports: renewedPorts,
      inbound: [{ port: 'in', appPort: app.port, protocol: 'HTTP', name: 'http' }],
      policies: () => [strictMtls()],
      tls: builtIn,
    })
    const renewedClient = await startClientSidecar({
      ports: renewedPorts,
      routes: [
        {
          listen: 'out',
          name: 'http',
          host: 'reviews',
          protocol: 'HTTP',
          target: 'in',
          istioMutual: { connectionPool: { http: { maxRequestsPerConnection: 20 } } },
        },
      ],
      tls: builtIn,
    })
    try {
      const firstServer = await servedSerial(renewedServer)
      const firstClient = await servedSerial(renewedClient)
      const result = await load(renewedPorts.out, 'reviews', 8_000)
      expect(result.errors.slice(0, 5)).toEqual([])
      expect(result.failed).toBe(0)
      expect(result.ok).toBeGreaterThan(400)
      // Renewed at half of 6 s: both sides serve another certificate now, and the server saw several client ones.
      expect(await servedSerial(renewedServer)).not.toBe(firstServer)
      expect(await servedSerial(renewedClient)).not.toBe(firstClient)
      const hashes = new Set(
        app.seen.map((r) => /Hash=([0-9a-f]+)/.exec(String(r.headers['x-forwarded-client-cert']))?.[1]),
      )
      hashes.delete(undefined)
      expect(hashes.size).toBeGreaterThanOrEqual(2)
    } finally {
      await renewedClient.stop()
      await renewedServer.stop()
      await app.close()
    }
  }, 60_000)
})
