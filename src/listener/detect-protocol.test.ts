// Unit tests for protocol detection: real ClientHellos from node:tls, the HTTP/2 preface, HTTP/1 request lines, TCP.

import { type AddressInfo, createServer } from 'node:net'
import { connect } from 'node:tls'
import { describe, expect, it } from 'vitest'
import { parseClientHello } from './detect-client-hello.ts'
import { detectProtocol, http2Preface } from './detect-protocol.ts'

/** The first flight node:tls sends as a client: a ClientHello record. */
async function clientHello(options: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const bytes = new Promise<Buffer>((resolve) =>
    server.once('connection', (socket) => {
      socket.once('data', (d: Buffer) => {
        resolve(d)
        socket.destroy()
      })
    }),
  )
  const client = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options })
  client.on('error', () => {})
  const data = await bytes
  client.destroy()
  server.close()
  return data
}

describe('ClientHello', () => {
  it('reads the SNI (lowercased) and the ALPN list', async () => {
    const hello = await clientHello({ servername: 'API.Example.com', ALPNProtocols: ['h2', 'http/1.1'] })
    expect(parseClientHello(hello)).toEqual({ sni: 'api.example.com', alpn: ['h2', 'http/1.1'] })
    expect(detectProtocol(hello)).toEqual({
      protocol: 'tls',
      clientHello: { sni: 'api.example.com', alpn: ['h2', 'http/1.1'] },
    })
  })

  it('has no SNI when the client sends none', async () => {
    expect(parseClientHello(await clientHello({}))).toEqual({ sni: undefined, alpn: [] })
  })

  it('waits for the rest of a ClientHello, also one split over several records', async () => {
    const hello = await clientHello({ servername: 'split.example.com' })
    expect(parseClientHello(hello.subarray(0, 40))).toBe('incomplete')
    expect(detectProtocol(hello.subarray(0, 40))).toBeUndefined()
    expect(detectProtocol(hello.subarray(0, 40), true)).toEqual({ protocol: 'tcp' })
    // The same handshake message in two records of 50 bytes and the rest.
    const body = hello.subarray(5)
    const record = (part: Buffer): Buffer =>
      Buffer.concat([Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part])
    const two = Buffer.concat([record(body.subarray(0, 50)), record(body.subarray(50))])
    expect(parseClientHello(two.subarray(0, 60))).toBe('incomplete')
    expect(parseClientHello(two)).toEqual({ sni: 'split.example.com', alpn: [] })
  })

  it('rejects handshake records that are not a ClientHello', () => {
    expect(parseClientHello(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]))).toBe(
      'invalid',
    )
    expect(detectProtocol(Buffer.from([0x16, 0x03, 0x09]))).toEqual({ protocol: 'tcp' })
  })
})

describe('detectProtocol', () => {
  it('knows the HTTP/2 preface, waiting while the bytes are still a prefix of it', () => {
    expect(detectProtocol(http2Preface.subarray(0, 3))).toBeUndefined()
    expect(detectProtocol(http2Preface.subarray(0, 10))).toBeUndefined()
    expect(detectProtocol(http2Preface)).toEqual({ protocol: 'http2' })
  })

  it('knows an HTTP/1 request line by its method and version', () => {
    const line = (text: string) => detectProtocol(Buffer.from(text, 'latin1'))?.protocol
    expect(line('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe('http1')
    expect(line('M-SEARCH * HTTP/1.1\r\n')).toBe('http1')
    expect(line('POST /x HTTP/1.0\n')).toBe('http1')
    expect(line('PATCH /a?b=c HTTP/1.1\r')).toBeUndefined()
    expect(line('GE')).toBeUndefined()
    expect(line('GET /long')).toBeUndefined()
    expect(line(`GET /${'a'.repeat(9000)}`)).toBe('http1')
  })

  it('calls anything else opaque TCP, as soon as it cannot be one of the others', () => {
    const line = (text: string) => detectProtocol(Buffer.from(text, 'latin1'))?.protocol
    expect(line('hello')).toBe('tcp')
    expect(line('GETTING STARTED\n')).toBe('tcp')
    expect(line('GET / HTTP/2.0\r\n')).toBe('tcp')
    expect(line('FOO / HTTP/1.1\r\n')).toBe('tcp')
    expect(line('\x00\x01')).toBe('tcp')
    expect(detectProtocol(Buffer.alloc(0), true)).toEqual({ protocol: 'tcp' })
  })
})
