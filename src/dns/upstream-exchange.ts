// Sends one DNS query to an upstream server over UDP or TCP and waits for its answer (miekg/dns Client.Exchange as Istio's agent uses it).

import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import type { UpstreamServer } from './resolv-conf.ts'

/** Istio's upstream client gives each of dial, write and read 5 s (pkg/dns/client/proxy.go). */
export const upstreamTimeoutMs = 5000

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
}

/** How an exchange ends: with the answer, or with an UpstreamError naming the server. */
interface Exchange {
  answer(message: Buffer): void
  fail(reason: string): void
}

/**
 * Runs one exchange on a socket of its own: `start` wires the socket to the Exchange, which settles once,
 * on the answer, a socket error or the timeout, and closes the socket with `close`.
 */
function exchange<S extends { on(event: 'error', listener: (error: Error) => void): unknown }>(
  server: UpstreamServer,
  timeoutMs: number,
  open: () => S,
  close: (socket: S) => void,
  start: (socket: S, exchange: Exchange) => void,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = open()
    let settled = false
    const settle = (): boolean => {
      if (settled) return false
      settled = true
      clearTimeout(timer)
      close(socket)
      return true
    }
    const ends: Exchange = {
      answer: (message) => {
        if (settle()) resolve(message)
      },
      fail: (reason) => {
        if (settle()) reject(new UpstreamError(`${server.address}:${server.port}: ${reason}`))
      },
    }
    const timer = setTimeout(() => ends.fail(`no answer in ${timeoutMs} ms`), timeoutMs)
    socket.on('error', (error) => ends.fail(error.message))
    start(socket, ends)
  })
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
  return exchange(
    server,
    timeoutMs,
    () => createSocket(server.family === 6 ? 'udp6' : 'udp4'),
    (socket) => socket.close(),
    (socket, ends) => {
      socket.on('message', (message, peer) => {
        if (peer.port !== server.port || message.length < 12) return
        if (message.readUInt16BE(0) !== query.readUInt16BE(0)) return
        ends.answer(message)
      })
      socket.connect(server.port, server.address, () => socket.send(query))
    },
  )
}

/** The upstream's answer to `query` over a TCP connection of its own (two-byte length prefix, RFC 1035 4.2.2). */
export function exchangeTcp(
  server: UpstreamServer,
  query: Buffer,
  timeoutMs = upstreamTimeoutMs,
): Promise<Buffer> {
  return exchange(
    server,
    timeoutMs,
    () => connect({ host: server.address, port: server.port }),
    (socket) => socket.destroy(),
    (socket, ends) => {
      let received = Buffer.alloc(0)
      socket.on('connect', () => {
        const length = Buffer.alloc(2)
        length.writeUInt16BE(query.length)
        socket.write(Buffer.concat([length, query]))
      })
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk])
        if (received.length < 2) return
        const size = received.readUInt16BE(0)
        if (received.length >= 2 + size) ends.answer(received.subarray(2, 2 + size))
      })
      socket.on('end', () => ends.fail('closed before answering'))
    },
  )
}
