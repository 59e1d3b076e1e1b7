// Scenario: PeerAuthentication on Sidecar ingress ports: STRICT, PERMISSIVE, DISABLE, portLevelMtls, precedence, XFCC, h2 and TCP over mTLS, workload certificate rotation.

import { createHash, X509Certificate } from 'node:crypto'
import { renameSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect as h2Connect } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type ConnectionOptions,
  createServer as createTlsServer,
  type TLSSocket,
  type Server as TlsServer,
  connect as tlsConnect,
} from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sendRaw } from './harness/client.ts'
import { type EchoServer, echoPath, rawGrpc, startEchoServer } from './harness/grpc.ts'
import { loopbackIngress, sidecar, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startTcpServer, type TcpServer } from './harness/tcp.ts'
import { type TestCa, testCa } from './harness/tls-ca.ts'
import type { TestCert } from './harness/tls-cert.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server'
const CLIENT_ID = 'spiffe://cluster.local/ns/foo/sa/bar'

let ca: TestCa
let otherCa: TestCa
let client: TestCert
let stranger: TestCert
let certDir: string
let proxy: ProxyProcess
let app: Upstream
let tcpApp: TcpServer
let appTls: TlsServer
let appTlsPort: number
let strictHttp: number
let permissiveHttp: number
let disableHttp: number
let strictTcp: number
let permissiveTls: number
let permissiveAuto: number
let strictGrpc: number
let grpcApp: EchoServer

function peerAuthentication(name: string, namespace: string, spec: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${spec}
`
}

function installWorkloadCert(cert: TestCert): void {
  // As a secret mount swaps files: written aside, renamed over the old ones.
  writeFileSync(join(certDir, 'key.tmp'), cert.key)
  writeFileSync(join(certDir, 'chain.tmp'), cert.cert)
  renameSync(join(certDir, 'key.tmp'), join(certDir, 'key.pem'))
  renameSync(join(certDir, 'chain.tmp'), join(certDir, 'cert-chain.pem'))
}

interface TlsReply {
  /** Everything the server sent before closing, or until the reply was complete. */
  readonly text: string
  readonly serverCn: string
  readonly error: string | undefined
}

/** Opens TLS to the port, writes `data`, and reads until the server closes or the reply is complete. */
function tlsExchange(port: number, data: string, options: ConnectionOptions): Promise<TlsReply> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options })
    let text = ''
    let serverCn = ''
    let settled = false
    const done = (error?: Error): void => {
      if (settled) return
      settled = true
      socket.destroy()
      resolve({ text, serverCn, error: error?.message })
    }
    socket.on('secureConnect', () => {
      serverCn = String(socket.getPeerCertificate().subject?.CN ?? '')
      socket.write(data)
    })
    socket.on('data', (d: Buffer) => {
      text += d.toString()
      if (text.includes('\r\n\r\n') && text.endsWith('}')) done()
      if (!text.startsWith('HTTP/') && text.length >= data.length) done()
    })
    socket.on('end', () => done())
    socket.on('error', (e) => done(e))
    setTimeout(() => done(new Error('timed out')), 5_000)
  })
}

const GET =
  'GET / HTTP/1.1\r\nhost: app\r\nx-forwarded-client-cert: By=spiffe://upstream;URI=spiffe://forged\r\nconnection: close\r\n\r\n'

/** TLS options offering `alpn`, presenting `cert` (the mesh client's by default; null: none). */
function mtls(alpn: string[], cert: TestCert | null = client): ConnectionOptions {
  return { ALPNProtocols: alpn, key: cert?.key, cert: cert?.cert, ca: ca.cert }
}

function echoedHeaders(reply: TlsReply): Record<string, string> {
  const body = reply.text.slice(reply.text.indexOf('\r\n\r\n') + 4)
  return (JSON.parse(body) as { headers: Record<string, string> }).headers
}

async function refusals(port: number): Promise<Record<string, number>> {
  const res = await proxy.admin('/listeners?format=json')
  const listeners = (await res.json()) as { address: string; mtls?: { refused: Record<string, number> } }[]
  return listeners.find((l) => l.address === `127.0.0.1:${port}`)?.mtls?.refused ?? {}
}

beforeAll(async () => {
  ca = testCa('mesh-root')
  otherCa = testCa('other-root')
  client = ca.issue('bar', [`URI:${CLIENT_ID}`])
  stranger = otherCa.issue('bar', [`URI:${CLIENT_ID}`])
  certDir = await mkdtemp(join(tmpdir(), 'outrigger-peer-authn-'))
  writeFileSync(join(certDir, 'root-cert.pem'), ca.cert)
  installWorkloadCert(ca.issue('server-v1', [`URI:${SERVER_ID}`]))
  app = await startUpstream('app')
  tcpApp = await startTcpServer('tcp-app')
  grpcApp = await startEchoServer('grpc-app')
  // An app that terminates its own TLS behind a PERMISSIVE port.
  const appCert = ca.issue('app-own-tls', ['DNS:app.example.com'])
  appTls = createTlsServer({ key: appCert.key, cert: appCert.cert }, (s) => s.end('app-tls-hello'))
  await new Promise<void>((r) => appTls.listen(0, '127.0.0.1', r))
  appTlsPort = (appTls.address() as { port: number }).port
  ;[strictHttp, permissiveHttp, disableHttp, strictTcp, permissiveTls, permissiveAuto, strictGrpc] =
    await freePorts(7)
  const resources = yamlStream(
    sidecar({
      ingress: [
        loopbackIngress(strictHttp, app.port, 'HTTP', 'http-strict'),
        loopbackIngress(permissiveHttp, app.port, 'HTTP', 'http-permissive'),
        loopbackIngress(disableHttp, app.port, 'HTTP', 'http-disable'),
        loopbackIngress(strictTcp, tcpApp.port, 'TCP', 'tcp-strict'),
        loopbackIngress(permissiveTls, appTlsPort, 'TLS', 'tls-permissive'),
        loopbackIngress(permissiveAuto, app.port, undefined, 'auto-permissive'),
        loopbackIngress(strictGrpc, grpcApp.port, 'GRPC', 'grpc-strict'),
      ],
    }),
    // Mesh-wide STRICT in the root namespace; the namespace policy leaves the mode UNSET (inherits);
    // the workload policy sets ports.
    peerAuthentication('mesh', 'istio-system', '  mtls: {mode: STRICT}'),
    peerAuthentication('namespace-unset', 'default', '  mtls: {mode: UNSET}'),
    peerAuthentication(
      'workload',
      'default',
      `  selector: {matchLabels: {app: test}}
  portLevelMtls:
    ${permissiveHttp}: {mode: PERMISSIVE}
    ${disableHttp}: {mode: DISABLE}
    ${permissiveTls}: {mode: PERMISSIVE}
    ${permissiveAuto}: {mode: PERMISSIVE}`,
    ),
    // A workload policy in the root namespace is not the workload's (pilot ignores it).
    peerAuthentication(
      'root-selector',
      'istio-system',
      '  selector: {matchLabels: {app: test}}\n  mtls: {mode: DISABLE}',
    ),
  )
  proxy = await startProxy({
    resources: { 'all.yaml': resources },
    extraBootstrap: `tls:
  certChain: ${join(certDir, 'cert-chain.pem')}
  privateKey: ${join(certDir, 'key.pem')}
  rootCert: ${join(certDir, 'root-cert.pem')}
`,
  })
}, 60_000)

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
  await tcpApp?.close()
  await grpcApp?.close()
  appTls?.close()
  await rm(certDir, { recursive: true, force: true })
})

describe('PeerAuthentication STRICT (mesh policy in the root namespace)', () => {
  it('takes mTLS from a workload certificate of the mesh root and sets XFCC as Envoy inside Istio', async () => {
    const reply = await tlsExchange(strictHttp, GET, mtls(['istio-http/1.1']))
    expect(reply.error).toBeUndefined()
    expect(reply.text).toMatch(/^HTTP\/1\.1 200/)
    expect(reply.serverCn).toBe('server-v1')
    const der = new X509Certificate(client.cert).raw
    const hash = createHash('sha256').update(der).digest('hex')
    // APPEND_FORWARD: the client's XFCC is kept (the connection is mTLS) and this hop's element appended.
    expect(echoedHeaders(reply)['x-forwarded-proto']).toBe('https')
    expect(echoedHeaders(reply)['x-forwarded-client-cert']).toBe(
      `By=spiffe://upstream;URI=spiffe://forged,By=${SERVER_ID};Hash=${hash};Subject="CN=bar";URI=${CLIENT_ID}`,
    )
  })

  it('refuses plain text, TLS without a client certificate and a certificate from another root, and counts each', async () => {
    expect(await sendRaw(strictHttp, 'GET / HTTP/1.1\r\nhost: app\r\n\r\n')).toBe('')
    const anonymous = await tlsExchange(strictHttp, GET, mtls(['istio-http/1.1'], null))
    expect(anonymous.text).toBe('')
    const foreign = await tlsExchange(strictHttp, GET, mtls(['istio-http/1.1'], stranger))
    expect(foreign.text).toBe('')
    await eventually(async () => {
      const counted = await refusals(strictHttp)
      return (
        counted.plaintext === 1 &&
        counted.no_client_certificate === 1 &&
        counted.untrusted_client_certificate === 1
      )
    })
    await expect
      .poll(() => proxy.stderr(), { timeout: 5000 })
      .toMatch(/refused by PeerAuthentication: plaintext: STRICT \(istio-system\/mesh\)/)
    // Other connections are unaffected.
    expect((await tlsExchange(strictHttp, GET, mtls(['istio-http/1.1']))).text).toMatch(/^HTTP\/1\.1 200/)
  })

  it('carries HTTP/2 over mTLS (ALPN istio-h2) with XFCC on every stream', async () => {
    const session = h2Connect(`https://127.0.0.1:${strictHttp}`, {
      createConnection: () =>
        tlsConnect({
          host: '127.0.0.1',
          port: strictHttp,
          rejectUnauthorized: false,
          ...mtls(['istio-h2', 'h2']),
        }),
    })
    try {
      for (let i = 0; i < 2; i++) {
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const stream = session.request({ ':path': `/h2/${i}`, ':authority': 'app' })
          let status = 0
          let body = ''
          stream.on('response', (h) => {
            status = Number(h[':status'])
          })
          stream.on('data', (d: Buffer) => {
            body += d.toString()
          })
          stream.on('end', () => resolve({ status, body }))
          stream.on('error', reject)
          stream.end()
        })
        expect(status).toBe(200)
        const headers = (JSON.parse(body) as { headers: Record<string, string> }).headers
        expect(headers['x-forwarded-client-cert']).toContain(`URI=${CLIENT_ID}`)
      }
    } finally {
      session.close()
    }
  })

  it('carries gRPC over mTLS (ALPN h2, as a gRPC client offers), trailers included', async () => {
    const session = h2Connect(`https://127.0.0.1:${strictGrpc}`, {
      createConnection: () =>
        tlsConnect({ host: '127.0.0.1', port: strictGrpc, rejectUnauthorized: false, ...mtls(['h2']) }),
    })
    try {
      const outcome = await rawGrpc(session, 'grpc-app', echoPath('Unary'), {}, { text: 'over mtls' })
      expect(outcome.headers[':status']).toBe(200)
      expect(outcome.trailers?.['grpc-status']).toBe('0')
      expect(outcome.body.subarray(5).toString()).toContain('over mtls')
      expect(grpcApp.calls).toContain(echoPath('Unary'))
    } finally {
      session.close()
    }
  })

  it('carries TCP over mTLS (ALPN istio) and refuses plain TCP', async () => {
    // With istio-peer-exchange the server would write its peer metadata frame first: test/peer-metadata.test.ts.
    const reply = await tlsExchange(strictTcp, 'ping over mtls', mtls(['istio']))
    expect(reply.text).toBe('ping over mtls')
    expect(await sendRaw(strictTcp, 'plain ping')).toBe('')
  })
})

describe('PeerAuthentication PERMISSIVE and DISABLE (workload portLevelMtls)', () => {
  it('PERMISSIVE on an HTTP port: plain text passes with any client XFCC stripped, mTLS is terminated', async () => {
    const plain = await sendRaw(
      permissiveHttp,
      'GET / HTTP/1.1\r\nhost: app\r\nx-forwarded-client-cert: URI=spiffe://forged\r\nconnection: close\r\n\r\n',
    )
    expect(plain).toMatch(/^HTTP\/1\.1 200/)
    expect(plain).not.toContain('x-forwarded-client-cert')
    expect(plain).toContain('"x-forwarded-proto":"http"')
    const secured = await tlsExchange(permissiveHttp, GET, mtls(['istio-peer-exchange', 'istio-http/1.1']))
    expect(echoedHeaders(secured)['x-forwarded-client-cert']).toContain(`;URI=${CLIENT_ID}`)
  })

  it('PERMISSIVE on an HTTP port closes TLS without an Istio ALPN (no filter chain takes it in Istio)', async () => {
    const reply = await tlsExchange(permissiveHttp, GET, mtls(['http/1.1']))
    expect(reply.text).toBe('')
    await eventually(async () => (await refusals(permissiveHttp)).tls_without_istio_alpn === 1)
  })

  it("PERMISSIVE on a TLS port passes the app's own TLS through untouched", async () => {
    const reply = await tlsExchange(permissiveTls, 'hello', { servername: 'app.example.com' })
    expect(reply.serverCn).toBe('app-own-tls')
    expect(reply.text).toBe('app-tls-hello')
  })

  it('PERMISSIVE on an undeclared port: plain HTTP, and HTTP inside mTLS sniffed after termination', async () => {
    expect(await sendRaw(permissiveAuto, 'GET / HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 200/,
    )
    const secured = await tlsExchange(permissiveAuto, GET, mtls(['istio-http/1.1']))
    expect(echoedHeaders(secured)['x-forwarded-client-cert']).toContain(`URI=${CLIENT_ID}`)
  })

  it('DISABLE: plain text only, and no XFCC from a plain-text client reaches the app', async () => {
    const plain = await sendRaw(
      disableHttp,
      'GET / HTTP/1.1\r\nhost: app\r\nx-forwarded-client-cert: URI=spiffe://forged\r\nconnection: close\r\n\r\n',
    )
    expect(plain).toMatch(/^HTTP\/1\.1 200/)
    expect(plain).not.toContain('forged')
    const tls = await tlsExchange(disableHttp, GET, mtls(['istio-http/1.1']))
    expect(tls.text).not.toMatch(/200/)
  })
})

describe('workload certificate rotation', () => {
  it('new handshakes present the new certificate; an open connection keeps working', async () => {
    const open = tlsConnect({
      host: '127.0.0.1',
      port: strictHttp,
      rejectUnauthorized: false,
      ...mtls(['istio-http/1.1']),
    })
    await new Promise<void>((resolve, reject) => {
      open.once('secureConnect', () => resolve())
      open.once('error', reject)
    })
    expect(String((open as TLSSocket).getPeerCertificate().subject?.CN)).toBe('server-v1')
    installWorkloadCert(ca.issue('server-v2', [`URI:${SERVER_ID}`]))
    await eventually(
      async () => (await tlsExchange(strictHttp, GET, mtls(['istio-http/1.1']))).serverCn === 'server-v2',
    )
    const answer = await new Promise<string>((resolve, reject) => {
      let text = ''
      open.on('data', (d: Buffer) => {
        text += d.toString()
      })
      open.on('end', () => resolve(text))
      open.on('error', reject)
      open.write('GET /still-open HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n')
    })
    expect(answer).toMatch(/^HTTP\/1\.1 200/)
    expect(answer).toContain('/still-open')
  })
})

describe('STRICT without a workload certificate', () => {
  it('warns at load and refuses every connection to the port', async () => {
    const [port] = await freePorts(1)
    const bare = await startProxy({
      resources: {
        'all.yaml': yamlStream(
          sidecar({ ingress: [loopbackIngress(port, app.port, 'HTTP', 'http')] }),
          peerAuthentication('strict', 'default', '  mtls: {mode: STRICT}'),
        ),
      },
    })
    try {
      expect(bare.stderr()).toMatch(
        /PeerAuthentication default\/strict makes port \d+ STRICT but the bootstrap has no tls \(workload certificate\): every connection to it is refused/,
      )
      expect(await sendRaw(port, 'GET / HTTP/1.1\r\nhost: app\r\n\r\n')).toBe('')
      expect((await tlsExchange(port, GET, mtls(['istio-http/1.1']))).text).toBe('')
      // The refusal is logged as the socket closes: the log line may land just after the client sees the close.
      await expect.poll(() => bare.stderr(), { timeout: 5000 }).toMatch(/no_workload_identity/)
    } finally {
      await bare.stop()
    }
  })
})
