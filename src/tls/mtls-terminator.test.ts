// The mTLS port's ALPN callback selects as node:tls's ALPNProtocols list does (server preference, no common protocol refused), over real handshakes.

import type { AddressInfo } from 'node:net'
import { connect, createServer as createTlsServer, type Server, type TlsOptions } from 'node:tls'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { selfSignedCert, type TestCert } from '../../test/harness/tls-cert.ts'
import { MTLS_ALPN_PROTOCOLS, selectMtlsAlpn } from './mtls-terminator.ts'

let cert: TestCert
const servers: Server[] = []

/** A TLS server that answers nothing: a handshake only, with these ALPN settings. */
async function listen(alpn: Pick<TlsOptions, 'ALPNProtocols' | 'ALPNCallback'>): Promise<number> {
  const server = createTlsServer({ key: cert.key, cert: cert.cert, ...alpn }, (socket) => socket.end())
  server.on('tlsClientError', () => {})
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

/** The protocol a client offering `offer` gets, `false` for none, or `refused` when the handshake fails. */
function negotiated(port: number, offer: string[]): Promise<string | false | 'refused'> {
  return new Promise((resolve) => {
    const socket = connect({
      port,
      host: '127.0.0.1',
      ca: cert.cert,
      servername: 'localhost',
      checkServerIdentity: () => undefined,
      ...(offer.length > 0 ? { ALPNProtocols: offer } : {}),
    })
    socket.once('secureConnect', () => {
      resolve(socket.alpnProtocol ?? false)
      socket.destroy()
    })
    socket.once('error', () => resolve('refused'))
  })
}

beforeAll(() => {
  cert = selfSignedCert(['localhost'])
})

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
})

describe('mTLS ALPN selection', () => {
  it('agrees with node:tls selecting from MTLS_ALPN_PROTOCOLS for any offer', async () => {
    const byList = await listen({ ALPNProtocols: MTLS_ALPN_PROTOCOLS })
    const byCallback = await listen({ ALPNCallback: selectMtlsAlpn })
    // Fixed cases first: server order wins, and a client with nothing in common is refused.
    expect(await negotiated(byCallback, ['istio', 'istio-http/1.1'])).toBe('istio-http/1.1')
    expect(await negotiated(byCallback, ['istio-peer-exchange', 'istio'])).toBe('istio-peer-exchange')
    expect(await negotiated(byCallback, ['spdy/3'])).toBe('refused')
    expect(await negotiated(byCallback, [])).toBe(false)
    const offers = fc.shuffledSubarray([...MTLS_ALPN_PROTOCOLS, 'spdy/3', 'http/1.0'])
    await fc.assert(
      fc.asyncProperty(offers, async (offer) => {
        expect(await negotiated(byCallback, offer)).toBe(await negotiated(byList, offer))
      }),
      { numRuns: 40 },
    )
  })
})
