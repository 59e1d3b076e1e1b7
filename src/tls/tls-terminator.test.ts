import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type TLSSocket } from 'node:tls'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { selfSignedCert, type TestCert } from '../../test/harness/tls-cert.ts'
import type { DownstreamTlsModel } from '../config/model.ts'
import { readCredentialsSync } from './server-credentials.ts'
import { TlsTerminator } from './tls-terminator.ts'

let dir: string
let first: TestCert
let second: TestCert
let third: TestCert
let terminator: TlsTerminator | undefined
let server: Server | undefined

function model(prefix: string, overrides: Partial<DownstreamTlsModel> = {}): DownstreamTlsModel {
  const files = {
    serverCertificate: join(dir, `${prefix}-cert.pem`),
    privateKey: join(dir, `${prefix}-key.pem`),
    caCertificates: undefined,
    caCrl: undefined,
  }
  return {
    mode: 'SIMPLE',
    inner: 'http',
    files,
    credentials: readCredentialsSync(files),
    subjectAltNames: [],
    minVersion: undefined,
    maxVersion: undefined,
    ciphers: undefined,
    source: { file: 'sidecar.yaml', line: 9 },
    ...overrides,
  }
}

/** Replaces a key and certificate pair the way a secret mount does: new files renamed over the old. */
function install(prefix: string, cert: TestCert): void {
  writeFileSync(join(dir, 'next-cert.tmp'), cert.cert)
  writeFileSync(join(dir, 'next-key.tmp'), cert.key)
  renameSync(join(dir, 'next-key.tmp'), join(dir, `${prefix}-key.pem`))
  renameSync(join(dir, 'next-cert.tmp'), join(dir, `${prefix}-cert.pem`))
}

/** A loopback server whose connections the terminator serves: each secure socket answers its ALPN and closes. */
async function serve(t: TlsTerminator): Promise<number> {
  const onSecure = (socket: TLSSocket): void => {
    socket.end(`hello ${socket.alpnProtocol}`)
  }
  server = createServer((socket) => t.accept(socket, onSecure))
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

/** The CN a new connection is shown, and what the server said on it. */
function handshake(port: number, alpn?: string[]): Promise<{ cn: string; said: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: alpn })
    let said = ''
    socket.on('data', (d: Buffer) => {
      said += d.toString()
    })
    socket.on('end', () => resolve({ cn: String(socket.getPeerCertificate().subject?.CN ?? ''), said }))
    socket.on('error', reject)
  })
}

async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`not met within ${ms} ms`)
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'outrigger-terminator-'))
  first = selfSignedCert(['first'])
  second = selfSignedCert(['second'])
  third = selfSignedCert(['third'])
  install('a', first)
  install('b', third)
})

afterEach(async () => {
  terminator?.close()
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())))
  server = undefined
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('TlsTerminator', () => {
  it('handshakes with ALPN h2 or http/1.1 and hands the secure socket over', async () => {
    terminator = new TlsTerminator('test', model('a'))
    const port = await serve(terminator)
    expect(await handshake(port, ['h2', 'http/1.1'])).toEqual({ cn: 'first', said: 'hello h2' })
    expect(await handshake(port, ['http/1.1'])).toEqual({ cn: 'first', said: 'hello http/1.1' })
    expect(await handshake(port)).toEqual({ cn: 'first', said: 'hello false' })
  })

  it('reloads changed files for new handshakes and ignores files that cannot be used', async () => {
    install('a', first)
    terminator = new TlsTerminator('test', model('a'))
    const port = await serve(terminator)
    expect((await handshake(port)).cn).toBe('first')

    install('a', second)
    await until(async () => (await handshake(port)).cn === 'second')
    expect(terminator.credentials.cert.toString()).toBe(second.cert)

    // A key that does not belong to the certificate: the last good pair keeps serving.
    writeFileSync(join(dir, 'a-key.pem'), third.key)
    await new Promise((r) => setTimeout(r, 500))
    expect((await handshake(port)).cn).toBe('second')
    expect(terminator.credentials.cert.toString()).toBe(second.cert)
  })

  it('follows a model update: new files are watched, the old ones no more', async () => {
    install('a', first)
    terminator = new TlsTerminator('test', model('a'))
    const port = await serve(terminator)
    terminator.update(model('b'))
    expect((await handshake(port)).cn).toBe('third')
    install('a', second)
    await new Promise((r) => setTimeout(r, 400))
    expect((await handshake(port)).cn).toBe('third')
  })
})
