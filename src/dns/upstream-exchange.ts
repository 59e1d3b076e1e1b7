// Sends one DNS query to an upstream server over UDP or TCP and waits for its answer (miekg/dns Client.Exchange as Istio's agent uses it).

import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import type { UpstreamServer } from './resolv-conf.ts'

/** Istio's upstream client gives each of dial, write and read 5 s (pkg/dns/client/proxy.go). */
export const upstreamTimeoutMs = 5000

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
}

/**
 * The upstream's answer to `query` over UDP, from a socket of its own (a fresh source port per query):
 * the first datagram from the server that carries the query's ID. A truncated answer is returned as it
 * is; the client retries over TCP, and that query goes upstream over TCP.
 */
export function exchangeUdp(
  server: UpstreamServer,
  query: Buffer,
  timeoutMs = upstreamTimeoutMs,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4')
    const done = (error: Error | undefined, answer?: Buffer): void => {
      clearTimeout(timer)
      socket.close()
      if (error === undefined && answer !== undefined) resolve(answer)
      else reject(error ?? new UpstreamError('no answer'))
    }
    const timer = setTimeout(
      () => done(new UpstreamError(`${server.address}:${server.port}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    )
    socket.on('error', (error) =>
      done(new UpstreamError(`${server.address}:${server.port}: ${error.message}`)),
    )
    socket.on('message', (message, peer) => {
      if (peer.port !== server.port || message.length < 12) return
      if (message.readUInt16BE(0) !== query.readUInt16BE(0)) return
      done(undefined, message)
    })
    socket.connect(server.port, server.address, () => socket.send(query))
  })
}

/** The upstream's answer to `query` over a TCP connection of its own (two-byte length prefix, RFC 1035 4.2.2). */
export function exchangeTcp(
  server: UpstreamServer,
  query: Buffer,
  timeoutMs = upstreamTimeoutMs,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.address, port: server.port })
    let received = Buffer.alloc(0)
    const done = (error: Error | undefined, answer?: Buffer): void => {
      clearTimeout(timer)
      socket.destroy()
      if (error === undefined && answer !== undefined) resolve(answer)
      else reject(error ?? new UpstreamError('no answer'))
    }
    const timer = setTimeout(
      () => done(new UpstreamError(`${server.address}:${server.port}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    )
    socket.on('error', (error) =>
      done(new UpstreamError(`${server.address}:${server.port}: ${error.message}`)),
    )
    socket.on('connect', () => {
      const length = Buffer.alloc(2)
      length.writeUInt16BE(query.length)
      socket.write(Buffer.concat([length, query]))
    })
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length < 2) return
      const size = received.readUInt16BE(0)
      if (received.length >= 2 + size) done(undefined, received.subarray(2, 2 + size))
    })
    socket.on('end', () =>
      done(new UpstreamError(`${server.address}:${server.port}: closed before answering`)),
    )
  })
}
