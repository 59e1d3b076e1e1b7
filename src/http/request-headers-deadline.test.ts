import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { connect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { selfSignedCert, type TestCert } from '../../test/harness/tls-cert.ts'
import { RequestHeadersDeadline } from './request-headers-deadline.ts'

const TIMEOUT_MS = 300

let cert: TestCert
let server: Server | undefined

beforeAll(() => {
  cert = selfSignedCert(['localhost'])
})

afterEach(() => {
  server?.close()
  server = undefined
})

interface Accepted {
  readonly raw: Socket
  readonly tls: TLSSocket
  /** How many times the deadline expired (its onExpired). */
  readonly expired: () => number
}

/**
 * A TCP server whose accepted sockets are armed at accept and then handshaken by a node:tls server, as
 * the listener's dispatcher does; `onSecure` runs with the TLS socket once the handshake is done.
 */
async function tlsPair(
  onSecure: (tls: TLSSocket) => void,
): Promise<{ accepted: Promise<Accepted>; client: TLSSocket }> {
  const tlsServer = createTlsServer({ key: cert.key, cert: cert.cert })
  let expiries = 0
  let raw: Socket | undefined
  const accepted = new Promise<Accepted>((resolve) => {
    tlsServer.on('secureConnection', (tls: TLSSocket) => {
      onSecure(tls)
      resolve({ raw: raw as Socket, tls, expired: () => expiries })
    })
  })
  server = createServer((socket) => {
    raw = socket
    RequestHeadersDeadline.arm(socket, TIMEOUT_MS, () => {
      expiries++
    })
    tlsServer.emit('connection', socket)
  })
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  const client = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.cert })
  client.on('error', () => {})
  return { accepted, client }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('RequestHeadersDeadline over TLS', () => {
  it('followed onto the TLS socket, the first request met there disarms it: the connection outlives the timeout', async () => {
    const { accepted, client } = await tlsPair((tls) => {
      RequestHeadersDeadline.followTls(tls)
      RequestHeadersDeadline.met(tls)
    })
    const { raw, tls, expired } = await accepted
    await sleep(TIMEOUT_MS * 2)
    expect(expired()).toBe(0)
    expect(raw.destroyed).toBe(false)
    expect(tls.destroyed).toBe(false)
    client.destroy()
  })

  it('followed but never met, it still closes the connection (the handshake counted) and counts once', async () => {
    const { accepted, client } = await tlsPair((tls) => RequestHeadersDeadline.followTls(tls))
    const closed = new Promise<void>((r) => client.once('close', () => r()))
    const { raw, tls, expired } = await accepted
    await closed
    expect(expired()).toBe(1)
    expect(raw.destroyed).toBe(true)
    expect(tls.destroyed).toBe(true)
  })

  it('met on a TLS socket it did not follow onto, it stays armed (the TLS socket does not reach its TCP socket)', async () => {
    const { accepted, client } = await tlsPair((tls) => RequestHeadersDeadline.met(tls))
    const closed = new Promise<void>((r) => client.once('close', () => r()))
    const { expired } = await accepted
    await closed
    expect(expired()).toBe(1)
  })
})
