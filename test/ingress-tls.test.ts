// Scenario: Sidecar ingress listeners terminate TLS (SIMPLE, MUTUAL, OPTIONAL_MUTUAL) with ALPN h2/http1.1 and reload rotated certificates.

import { execFile } from 'node:child_process'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { type ClientHttp2Session, connect as h2Connect } from 'node:http2'
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { type ConnectionOptions, type PeerCertificate, type TLSSocket, connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sendRaw } from './harness/client.ts'
import { type Fields, loopbackIngress, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startTcpServer, type TcpServer } from './harness/tcp.ts'
import { type TestCa, testCa } from './harness/tls-ca.ts'
import type { TestCert } from './harness/tls-cert.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const CLIENT_SAN = 'spiffe://cluster.local/ns/default/sa/client'

interface Reply {
  status: number
  body: string
  /** The CN of the certificate the proxy presented. */
  serverCn: string
  alpn: string | false | null
  reused: boolean
}

interface Echo {
  name: string
  url: string
  headers: Record<string, string>
}

interface ClientOptions {
  readonly cert?: TestCert
  readonly agent?: Agent
  /** Protocols offered by ALPN; none by default (node:https offers none). */
  readonly alpn?: string[]
}

let ca: TestCa
let otherCa: TestCa
let client: TestCert
let stranger: TestCert
let wrongSan: TestCert
let certDir: string
let rotateDir: string
let proxy: ProxyProcess
let app: Upstream
let tcpApp: TcpServer
let simple: number
let mutual: number
let optional: number
let rotating: number
let tlsTcp: number

function writeCert(dir: string, prefix: string, cert: TestCert): void {
  writeFileSync(join(dir, `${prefix}-cert.pem`), cert.cert)
  writeFileSync(join(dir, `${prefix}-key.pem`), cert.key)
}

function sidecarWith(serverCertificate: string): string {
  const certs = (dir: string, prefix: string) => ({
    serverCertificate: `${dir}/${prefix}-cert.pem`,
    privateKey: `${dir}/${prefix}-key.pem`,
  })
  // The rotating listener's files are named relative to the resource file (<proxy dir>/istio/).
  const rotateRelative = `../../${basename(rotateDir)}`
  const https = (port: number, name: string, tls: Fields) => ({
    ...loopbackIngress(port, app.port, 'HTTPS', name),
    tls,
  })
  return sidecar({
    ingress: [
      https(simple, 'https-simple', {
        mode: 'SIMPLE',
        serverCertificate,
        privateKey: `${certDir}/server-key.pem`,
      }),
      https(mutual, 'https-mutual', {
        mode: 'MUTUAL',
        ...certs(certDir, 'server'),
        caCertificates: `${certDir}/ca.pem`,
        subjectAltNames: [CLIENT_SAN],
      }),
      https(optional, 'https-optional', {
        mode: 'OPTIONAL_MUTUAL',
        ...certs(certDir, 'server'),
        caCertificates: `${certDir}/ca.pem`,
        minProtocolVersion: 'TLSV1_2',
      }),
      https(rotating, 'https-rotating', { mode: 'SIMPLE', ...certs(rotateRelative, 'rotating') }),
      {
        ...loopbackIngress(tlsTcp, tcpApp.port, 'TLS', 'tls-tcp'),
        tls: { mode: 'SIMPLE', ...certs(certDir, 'server') },
      },
    ],
  })
}

/** A GET over TLS to 127.0.0.1:`port`, trusting the test CA; `cert` is the client certificate to present. */
function get(port: number, path: string, options: ClientOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // node:https passes the TLS options through to tls.connect, ALPNProtocols included.
    const requestOptions: RequestOptions & ConnectionOptions = {
      host: '127.0.0.1',
      port,
      path,
      servername: 'localhost',
      ca: ca.cert,
      cert: options.cert?.cert,
      key: options.cert?.key,
      agent: options.agent ?? false,
      ALPNProtocols: options.alpn,
      timeout: 5_000,
    }
    const req = httpsRequest(requestOptions, (res) => {
      const socket = res.socket as TLSSocket
      const serverCn = String((socket.getPeerCertificate() as PeerCertificate).subject?.CN ?? '')
      const alpn = socket.alpnProtocol
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          serverCn,
          alpn,
          reused: req.reusedSocket,
        })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
}

function echo(reply: Reply): Echo {
  return JSON.parse(reply.body) as Echo
}

/** The CN of the certificate a fresh TLS connection to `port` is shown. */
function serverCnOf(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false },
      () => {
        const cn = String(socket.getPeerCertificate().subject?.CN ?? '')
        socket.destroy()
        resolve(cn)
      },
    )
    socket.on('error', reject)
  })
}

function h2Over(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { ca: ca.cert, servername: 'localhost' })
    session.once('error', reject)
    session.once('remoteSettings', () => resolve(session))
    session.once('goaway', (code) => reject(new Error(`GOAWAY ${code}`)))
  })
}

function h2Get(session: ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path })
    let status = 0
    const chunks: Buffer[] = []
    stream.on('response', (headers) => {
      status = Number(headers[':status'])
    })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }))
    stream.on('error', reject)
  })
}

beforeAll(async () => {
  ca = testCa('outrigger-test-root')
  otherCa = testCa('someone-else')
  const server = ca.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1'])
  client = ca.issue('client', [`URI:${CLIENT_SAN}`])
  wrongSan = ca.issue('other', ['URI:spiffe://cluster.local/ns/default/sa/other'])
  stranger = otherCa.issue('client', [`URI:${CLIENT_SAN}`])
  certDir = mkdtempSync(join(tmpdir(), 'outrigger-tls-'))
  rotateDir = mkdtempSync(join(tmpdir(), 'outrigger-tls-rotate-'))
  writeCert(certDir, 'server', server)
  writeFileSync(join(certDir, 'ca.pem'), ca.cert)
  writeCert(rotateDir, 'rotating', ca.issue('first', ['DNS:localhost']))
  app = await startUpstream('app')
  tcpApp = await startTcpServer('tcp-app')
  ;[simple, mutual, optional, rotating, tlsTcp] = await freePorts(5)
  proxy = await startProxy({ resources: { 'sidecar.yaml': sidecarWith(`${certDir}/server-cert.pem`) } })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([app?.close(), tcpApp?.close()])
  for (const dir of [certDir, rotateDir]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe('SIMPLE', () => {
  it('serves HTTP/1.1 over TLS and forwards plaintext with x-forwarded-proto https', async () => {
    const reply = await get(simple, '/over-tls?x=1', { alpn: ['http/1.1'] })
    expect(reply.status).toBe(200)
    expect(reply.serverCn).toBe('localhost')
    expect(reply.alpn).toBe('http/1.1')
    const e = echo(reply)
    expect(e.name).toBe('app')
    expect(e.url).toBe('/over-tls?x=1')
    expect(e.headers['x-forwarded-proto']).toBe('https')
    // A client that offers no ALPN at all speaks HTTP/1.1.
    const noAlpn = await get(simple, '/no-alpn')
    expect(noAlpn.alpn).toBe(false)
    expect(echo(noAlpn).url).toBe('/no-alpn')
  })

  it('serves HTTP/2 when ALPN picks h2', async () => {
    const session = await h2Over(simple)
    try {
      expect(session.alpnProtocol).toBe('h2')
      const replies = await Promise.all([h2Get(session, '/h2/a'), h2Get(session, '/h2/b')])
      for (const [i, reply] of replies.entries()) {
        expect(reply.status).toBe(200)
        const e = JSON.parse(reply.body) as Echo
        expect(e.url).toBe(i === 0 ? '/h2/a' : '/h2/b')
        expect(e.headers['x-forwarded-proto']).toBe('https')
      }
    } finally {
      session.close()
    }
  })

  it('answers curl --http2 over TLS with HTTP/2', async () => {
    const caFile = join(certDir, 'ca.pem')
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'curl',
        ['-s', '--http2', '--cacert', caFile, '-w', '\n%{http_version}', `https://localhost:${simple}/curl`],
        { timeout: 10_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    )
    const [body, version] = out.split('\n')
    expect(version).toBe('2')
    expect((JSON.parse(body) as Echo).headers['x-forwarded-proto']).toBe('https')
  })

  it('closes a plaintext HTTP connection to the TLS port and keeps serving', async () => {
    const raw = await sendRaw(simple, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n')
    expect(raw).not.toContain('HTTP/1.1 200')
    expect((await get(simple, '/after-plaintext')).status).toBe(200)
  })

  it('terminates TLS on a TLS port and proxies the inner bytes as TCP', async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect(
        { host: '127.0.0.1', port: tlsTcp, servername: 'localhost', ca: ca.cert },
        () => socket.write('ping over tls'),
      )
      socket.once('data', (d: Buffer) => {
        socket.destroy()
        resolve(d.toString())
      })
      socket.on('error', reject)
    })
    expect(echoed).toBe('ping over tls')
  })
})

describe('MUTUAL', () => {
  it('accepts a client with a certificate from the CA and an allowed SAN', async () => {
    const reply = await get(mutual, '/mutual', { cert: client })
    expect(reply.status).toBe(200)
    expect(echo(reply).headers['x-forwarded-proto']).toBe('https')
  })

  it('rejects a client without a certificate', async () => {
    await expect(get(mutual, '/no-cert')).rejects.toThrow()
  })

  it('rejects a certificate from another CA and one whose SAN is not allowed', async () => {
    await expect(get(mutual, '/stranger', { cert: stranger })).rejects.toThrow()
    await expect(get(mutual, '/wrong-san', { cert: wrongSan })).rejects.toThrow()
    expect((await get(mutual, '/still-fine', { cert: client })).status).toBe(200)
  })

  it('OPTIONAL_MUTUAL takes clients without a certificate but not with a bad one', async () => {
    expect((await get(optional, '/anonymous')).status).toBe(200)
    expect((await get(optional, '/with-cert', { cert: client })).status).toBe(200)
    await expect(get(optional, '/stranger', { cert: stranger })).rejects.toThrow()
  })
})

describe('certificate rotation', () => {
  it('serves new connections with the new certificate while an open one keeps working', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const before = await get(rotating, '/before', { agent })
      expect(before.status).toBe(200)
      expect(before.serverCn).toBe('first')

      // Replace both files as a secret mount does: new files renamed over the old ones.
      const next = ca.issue('second', ['DNS:localhost'])
      writeFileSync(join(rotateDir, 'next-cert.pem'), next.cert)
      writeFileSync(join(rotateDir, 'next-key.pem'), next.key)
      renameSync(join(rotateDir, 'next-key.pem'), join(rotateDir, 'rotating-key.pem'))
      renameSync(join(rotateDir, 'next-cert.pem'), join(rotateDir, 'rotating-cert.pem'))

      await eventually(async () => (await serverCnOf(rotating)) === 'second', 10_000)
      const fresh = await get(rotating, '/fresh')
      expect(fresh.status).toBe(200)
      expect(fresh.serverCn).toBe('second')

      const after = await get(rotating, '/after', { agent })
      expect(after.status).toBe(200)
      expect(after.reused).toBe(true)
      expect(after.serverCn).toBe('first')
    } finally {
      agent.destroy()
    }
  })
})

describe('bad certificate files', () => {
  it('rejects the config with file:line and keeps serving the last good one', async () => {
    const missing = join(certDir, 'missing-cert.pem')
    const yaml = sidecarWith(missing)
    await proxy.writeResource('sidecar.yaml', yaml)
    const file = join(proxy.dir, 'istio', 'sidecar.yaml')
    // `serverCertificate` of ingress[0] is on the first line of the resource that names it.
    const line = yaml.split('\n').findIndex((text) => text.includes('serverCertificate:')) + 1
    const expected = `${file}:${line}: tls: serverCertificate ${missing}: cannot read`
    await eventually(async () => proxy.stderr().includes(expected), 10_000)
    expect((await get(simple, '/last-good')).status).toBe(200)
  })
})
