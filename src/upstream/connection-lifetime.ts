// Envoy's max_connection_duration for HTTP/1.1 upstream connections: one older than the limit closes as soon as it is idle.

import type { buildConnector, Dispatcher } from 'undici'
import { Client } from './undici-parts.ts'

/** How often a connection past its duration but still busy is looked at again. */
const BUSY_RECHECK_MS = 10

/**
 * An undici Pool `factory` whose Clients' sockets expire `durationMs` after they connect. A socket
 * serving a request (pipelining 1: at most one) is left to finish it, then closed, as Envoy drains
 * the connection; the Client reconnects for its next request.
 */
export function expiringClientFactory(durationMs: number): (origin: URL, opts: object) => Dispatcher {
  return (origin, opts) => {
    const options = opts as Client.Options & { connect: buildConnector.connector }
    const connector = options.connect
    const client: Client = new Client(origin, {
      ...options,
      connect: (connectOptions, callback) =>
        connector(connectOptions, (...result) => {
          if (result[0] === null) expireAfter(result[1], client, durationMs)
          callback(...result)
        }),
    })
    return client
  }
}

function expireAfter(socket: import('node:net').Socket, client: Client, durationMs: number): void {
  const expire = (): void => {
    if (socket.destroyed) return
    if (client.stats.size === 0) {
      socket.destroy()
      return
    }
    timer = setTimeout(expire, BUSY_RECHECK_MS)
    timer.unref()
  }
  let timer = setTimeout(expire, durationMs)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
