// Scenario: DestinationRule tls and auto-mTLS originate TLS upstream with Istio's SNI and ALPN (h1, h2, TCP), checking the peer's identity.

import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createH2Server, type Http2Server } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { exchange } from './harness/tcp.ts'
import { type TestCa, testCa } from './harness/tls-ca.ts'
import type { TestCert } from './harness/tls-cert.ts'

const TD = 'cluster.local'
const SLEEP = `spiffe://${TD}/ns/default/sa/sleep`
const REVIEWS = `spiffe://${TD}/ns/default/sa/reviews`

/** What a TLS server saw of one handshake. */
interface Seen {
  sni: string | undefined
  alpn: readonly string[]
  clientId: string
}

/** A TLS server that requires a client certificate from `clientCa`, records each handshake, then serves `kind`. */
interface MtlsServer {
  readonly port: number
  readonly seen: Seen[]
  close(): void
}

async function mtlsServer(
  kind: 'h1' | 'h2' | 'tcp',
  cert: TestCert,
  clientCa: TestCa | undefined,
): Promise<MtlsServer> {
  const seen: Seen[] = []
  let h1: HttpServer | undefined
  let h2: Http2Server | undefined
  if (kind === 'h1') {
    h1 = createHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' })
      res.end(`h1 ${req.url}`)
    })
  } else if (kind === 'h2') {
    h2 = createH2Server((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`h2 ${req.url}`)
    })
  }
  const offered = new WeakMap<object, Seen>()
  const tls: TlsServer = createTlsServer(
    {
      key: cert.key,
      cert: cert.cert,
      ...(clientCa === undefined ? {} : { ca: clientCa.cert, requestCert: true, rejectUnauthorized: true }),
      ALPNCallback: ({ servername, protocols }) => {
        const entry: Seen = { sni: servername, alpn: protocols, clientId: '' }
        seen.push(entry)
        if (kind === 'h2') return 'h2'
        if (kind === 'h1') return protocols.includes('http/1.1') ? 'http/1.1' : undefined
        return protocols[protocols.length - 1]
      },
    },
    (socket: TLSSocket) => {
      const entry = seen[seen.length - 1]
      if (entry !== undefined) {
        const san = socket.getPeerCertificate().subjectaltname ?? ''
        entry.clientId = san.replace(/^URI:/, '')
        offered.set(socket, entry)
      }
      socket.on('error', () => {})
      if (h1 !== undefined) h1.emit('connection', socket)
      else if (h2 !== undefined) h2.emit('connection', socket)
      else socket.pipe(socket)
    },
  )
  tls.on('tlsClientError', () => {})
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve))
  const address = tls.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    seen,
    close: () => {
      tls.close()
      h1?.close()
      h2?.close()
    },
  }
}

let ca: TestCa
let otherCa: TestCa
let certDir: string
let proxy: ProxyProcess
let egressH1: number
let egressH2: number
let egressTcp: number
const servers: MtlsServer[] = []
let reviews: MtlsServer
let reviewsH2: MtlsServer
let reviewsTcp: MtlsServer
let wrongId: MtlsServer
let otherRoot: MtlsServer
let auto: MtlsServer
let plain: HttpServer
let plainPort: number
let simple: MtlsServer
let mutual: MtlsServer
let unknownRoot: MtlsServer

function writeWorkload(cert: TestCert): void {
  writeFileSync(join(certDir, 'key.pem'), cert.key)
  writeFileSync(join(certDir, 'cert-chain.pem'), cert.cert)
  writeFileSync(join(certDir, 'root-cert.pem'), ca.cert)
}

/** A MESH_INTERNAL ServiceEntry on `port` served by 127.0.0.1:`target`, endpoints running as `sa`. */
function meshService(
  name: string,
  port: number,
  protocol: string,
  target: number,
  extra: { sa?: string; labels?: Record<string, string>; spec?: istio.Fields } = {},
): string {
  return istio.serviceEntry({
    name,
    ports: [{ number: port, name: 'p', protocol }],
    endpoints: [
      {
        address: '127.0.0.1',
        ports: { p: target },
        ...(extra.labels === undefined ? {} : { labels: extra.labels }),
        ...(extra.sa === undefined ? {} : { serviceAccount: extra.sa }),
      } as istio.WorkloadEndpoint,
    ],
    spec: { location: 'MESH_INTERNAL', ...extra.spec },
  })
}

const tlsRule = (host: string, tls: istio.Fields): string =>
  istio.destinationRule({ host, trafficPolicy: { tls } })

beforeAll(async () => {
  ca = testCa('mesh-root')
  otherCa = testCa('other-root')
  certDir = mkdtempSync(join(tmpdir(), 'outrigger-mtls-'))
  writeWorkload(ca.issue('sleep', [`URI:${SLEEP}`]))
  const reviewsCert = ca.issue('reviews', [`URI:${REVIEWS}`])
  reviews = await mtlsServer('h1', reviewsCert, ca)
  reviewsH2 = await mtlsServer('h2', reviewsCert, ca)
  reviewsTcp = await mtlsServer('tcp', reviewsCert, ca)
  wrongId = await mtlsServer('h1', reviewsCert, ca)
  otherRoot = await mtlsServer('h1', otherCa.issue('reviews', [`URI:${REVIEWS}`]), ca)
  auto = await mtlsServer('h1', reviewsCert, ca)
  const external = ca.issue('api.example.com', ['DNS:api.example.com'])
  simple = await mtlsServer('h1', external, undefined)
  mutual = await mtlsServer('h1', external, ca)
  unknownRoot = await mtlsServer('h1', otherCa.issue('api', ['DNS:api.example.com']), undefined)
  servers.push(reviews, reviewsH2, reviewsTcp, wrongId, otherRoot, auto, simple, mutual, unknownRoot)
  const client = ca.issue('client', ['DNS:client.example.com'])
  writeFileSync(join(certDir, 'ca.pem'), ca.cert)
  writeFileSync(join(certDir, 'client-cert.pem'), client.cert)
  writeFileSync(join(certDir, 'client-key.pem'), client.key)
  plain = createHttpServer((_req, res) => res.end('plain'))
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
  const address = plain.address()
  plainPort = typeof address === 'object' && address !== null ? address.port : 0
  ;[egressH1, egressH2, egressTcp] = await freePorts(3)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.sidecar({
        egress: [
          { port: egressH1, protocol: 'HTTP', name: 'http' },
          { port: egressH2, protocol: 'HTTP2', name: 'h2' },
          { port: egressTcp, protocol: 'TCP', name: 'tcp' },
        ],
      }),
      'services.yaml': istio.yamlStream(
        meshService('reviews', egressH1, 'HTTP', reviews.port, { sa: 'reviews' }),
        tlsRule('reviews', { mode: 'ISTIO_MUTUAL' }),
        meshService('reviews-h2', egressH2, 'HTTP2', reviewsH2.port, { sa: 'reviews' }),
        tlsRule('reviews-h2', { mode: 'ISTIO_MUTUAL' }),
        meshService('reviews-tcp', egressTcp, 'TCP', reviewsTcp.port, { sa: 'reviews' }),
        tlsRule('reviews-tcp', { mode: 'ISTIO_MUTUAL' }),
        meshService('ratings', egressH1, 'HTTP', wrongId.port, { sa: 'ratings' }),
        tlsRule('ratings', { mode: 'ISTIO_MUTUAL' }),
        meshService('foreign', egressH1, 'HTTP', otherRoot.port, { sa: 'reviews' }),
        tlsRule('foreign', { mode: 'ISTIO_MUTUAL' }),
        meshService('automatic', egressH1, 'HTTP', auto.port, {
          sa: 'reviews',
          labels: { 'security.istio.io/tlsMode': 'istio' },
        }),
        meshService('legacy', egressH1, 'HTTP', plainPort, { sa: 'reviews' }),
        meshService('api', egressH1, 'HTTP', simple.port),
        tlsRule('api', {
          mode: 'SIMPLE',
          sni: 'api.example.com',
          caCertificates: join(certDir, 'ca.pem'),
          subjectAltNames: ['api.example.com'],
        }),
        meshService('insecure', egressH1, 'HTTP', unknownRoot.port),
        tlsRule('insecure', { mode: 'SIMPLE', insecureSkipVerify: true }),
        meshService('api-mutual', egressH1, 'HTTP', mutual.port),
        tlsRule('api-mutual', {
          mode: 'MUTUAL',
          sni: 'api.example.com',
          clientCertificate: join(certDir, 'client-cert.pem'),
          privateKey: join(certDir, 'client-key.pem'),
          caCertificates: join(certDir, 'ca.pem'),
        }),
      ),
    },
    extraBootstrap: `tls:
  certChain: ${join(certDir, 'cert-chain.pem')}
  privateKey: ${join(certDir, 'key.pem')}
  rootCert: ${join(certDir, 'root-cert.pem')}
`,
  })
}, 60_000)

afterAll(async () => {
  await proxy?.stop()
  for (const s of servers) s.close()
  plain?.close()
})

describe('ISTIO_MUTUAL (istio/istio pilot/pkg/networking/core/cluster_tls.go)', () => {
  it('HTTP/1.1: presents the workload certificate, SNI outbound_.<port>_._.<host>, ALPN istio-http/1.1', async () => {
    const reply = await send(egressH1, 'reviews', '/one')
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('h1 /one')
    expect(reviews.seen.at(-1)).toEqual({
      sni: `outbound_.${egressH1}_._.reviews.default.svc.cluster.local`,
      alpn: ['istio-http/1.1', 'istio', 'http/1.1'],
      clientId: SLEEP,
    })
  })

  it('HTTP/2: ALPN istio-h2, istio, h2 (mtlsHTTP2ALPN)', async () => {
    const reply = await send(egressH2, 'reviews-h2', '/two')
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('h2 /two')
    expect(reviewsH2.seen.at(-1)).toEqual({
      sni: `outbound_.${egressH2}_._.reviews-h2.default.svc.cluster.local`,
      alpn: ['istio-h2', 'istio', 'h2'],
      clientId: SLEEP,
    })
  })

  it('TCP: ALPN istio-peer-exchange, istio (ALPNInMeshWithMxc) and the bytes flow both ways', async () => {
    const result = await exchange(egressTcp, 'ping over mtls')
    expect(result.text).toBe('ping over mtls')
    expect(reviewsTcp.seen.at(-1)).toEqual({
      sni: `outbound_.${egressTcp}_._.reviews-tcp.default.svc.cluster.local`,
      alpn: ['istio-peer-exchange', 'istio'],
      clientId: SLEEP,
    })
  })

  it('refuses a server whose SPIFFE ID is not the service account of the endpoint: 503 UF CERTIFICATE_VERIFY_FAILED', async () => {
    const reply = await send(egressH1, 'ratings', '/')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: connection failure, ' +
        'transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end',
    )
  })

  it('refuses a server that chains to another root', async () => {
    const reply = await send(egressH1, 'foreign', '/')
    expect(reply.status).toBe(503)
    expect(reply.body).toContain('CERTIFICATE_VERIFY_FAILED')
  })
})

describe('auto-mTLS (buildAutoMtlsSettings)', () => {
  it('originates ISTIO_MUTUAL to endpoints labelled security.istio.io/tlsMode: istio without a DestinationRule', async () => {
    const reply = await send(egressH1, 'automatic', '/auto')
    expect(reply.status).toBe(200)
    expect(auto.seen.at(-1)?.clientId).toBe(SLEEP)
  })

  it('sends plain text to unlabelled endpoints', async () => {
    const reply = await send(egressH1, 'legacy', '/')
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('plain')
  })
})

describe('SIMPLE and MUTUAL with files', () => {
  it('SIMPLE: verifies against caCertificates and subjectAltNames, sends sni, no client certificate', async () => {
    const reply = await send(egressH1, 'api', '/s')
    expect(reply.status).toBe(200)
    expect(simple.seen.at(-1)).toMatchObject({ sni: 'api.example.com', clientId: '' })
  })

  it('SIMPLE with insecureSkipVerify accepts a certificate from an unknown root', async () => {
    const reply = await send(egressH1, 'insecure', '/')
    expect(reply.status).toBe(200)
    expect(unknownRoot.seen).toHaveLength(1)
  })

  it('MUTUAL: presents the clientCertificate file', async () => {
    const reply = await send(egressH1, 'api-mutual', '/m')
    expect(reply.status).toBe(200)
    expect(mutual.seen.at(-1)?.clientId).toBe('DNS:client.example.com')
  })
})

describe('rotation', () => {
  it('a replaced workload certificate is presented on the next new connection', async () => {
    const next = `spiffe://${TD}/ns/default/sa/sleep-rotated`
    writeWorkload(ca.issue('sleep', [`URI:${next}`]))
    await eventually(async () => {
      const reply = await send(egressH1, 'reviews', '/after')
      return reply.status === 200 && reviews.seen.at(-1)?.clientId === next
    }, 10_000)
  })
})
