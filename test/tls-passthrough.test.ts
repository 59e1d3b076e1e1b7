// Scenario: TLS passthrough on a port declared TLS: the ClientHello's SNI picks the service, tls[] routes split by weight.

import type { AddressInfo } from 'node:net'
import { connect, createServer, type Server } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serviceEntry, sidecar, virtualService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { selfSignedCert, type TestCert } from './harness/tls-cert.ts'

let proxy: ProxyProcess
let cert: TestCert
let serverA: Server
let serverB: Server
let portA: number
let portB: number
let tlsPort: number

/** A TLS server that answers every connection with its name and the SNI it saw, then closes. */
async function startTlsServer(name: string): Promise<[Server, number]> {
  const server = createServer({ key: cert.key, cert: cert.cert, ALPNProtocols: ['echo/1'] }, (socket) => {
    socket.on('error', () => socket.destroy())
    socket.end(`${name} sni=${socket.servername} alpn=${socket.alpnProtocol}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return [server, (server.address() as AddressInfo).port]
}

interface TlsReply {
  readonly text: string
  readonly error: string | undefined
  readonly authorized: boolean
}

/** A verifying TLS client through the proxy's TLS port. */
function tlsRequest(servername: string | undefined): Promise<TlsReply> {
  return new Promise((resolve) => {
    let text = ''
    let error: string | undefined
    let authorized = false
    const socket = connect({
      host: '127.0.0.1',
      port: tlsPort,
      ca: cert.cert,
      ALPNProtocols: ['echo/1'],
      ...(servername === undefined ? { checkServerIdentity: () => undefined } : { servername }),
    })
    socket.on('secureConnect', () => {
      authorized = socket.authorized
    })
    socket.on('data', (d: Buffer) => {
      text += d.toString()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message
    })
    socket.on('close', () => resolve({ text, error, authorized }))
    setTimeout(() => socket.destroy(), 5_000).unref()
  })
}

beforeAll(async () => {
  cert = selfSignedCert(['a.example.com', 'b.example.com', 'split.example.com', 'nowhere.example.com'])
  ;[serverA, portA] = await startTlsServer('A')
  ;[serverB, portB] = await startTlsServer('B')
  ;[tlsPort] = await freePorts(1)
  const service = (host: string, targetPort: number): string =>
    serviceEntry({
      name: host.split('.')[0],
      hosts: [host],
      ports: [{ number: tlsPort, name: 'tls', protocol: 'TLS', targetPort }],
    })
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: tlsPort, protocol: 'TLS', name: 'tls' }] }),
      'services.yaml': yamlStream(
        service('a.example.com', portA),
        service('b.example.com', portB),
        service('split.example.com', portA),
        virtualService({
          name: 'split',
          hosts: ['split.example.com'],
          tls: [
            {
              match: [{ port: tlsPort, sniHosts: ['split.example.com'] }],
              route: [
                { destination: { host: 'a.example.com' }, weight: 50 },
                { destination: { host: 'b.example.com' }, weight: 50 },
              ],
            },
          ],
        }),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  serverA?.close()
  serverB?.close()
})

describe('TLS passthrough', () => {
  it('routes by SNI to the service of that name, end to end encrypted (the upstream certificate verifies)', async () => {
    const a = await tlsRequest('a.example.com')
    expect(a).toMatchObject({ text: 'A sni=a.example.com alpn=echo/1', error: undefined, authorized: true })
    const b = await tlsRequest('b.example.com')
    expect(b).toMatchObject({ text: 'B sni=b.example.com alpn=echo/1', error: undefined, authorized: true })
  })

  it('splits an SNI across tls[] route destinations by weight', async () => {
    const seen = new Set<string>()
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const reply = await tlsRequest('split.example.com')
      expect(reply.error).toBeUndefined()
      seen.add(reply.text.split(' ')[0])
    }
    expect([...seen].sort()).toEqual(['A', 'B'])
  })

  it('closes connections whose SNI matches no route, or that send none', async () => {
    const unknown = await tlsRequest('nowhere.example.com')
    expect(unknown.text).toBe('')
    expect(unknown.error).toBeDefined()
    const none = await tlsRequest(undefined)
    expect(none.text).toBe('')
    expect(none.error).toBeDefined()
  })
})
