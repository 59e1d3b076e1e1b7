// node:http's `upgrade` event: the request runs the listener's filter chain like any other request.

import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { handleUpgradeRequest } from '../http/server.ts'
import { ServerResponse } from '../protocol/node-http.ts'
import type { ListenerRuntime } from './listener-runtime.ts'

/** How long a connection answered without switching may take to close before it is destroyed. */
const lingerMs = 1_000

/**
 * node:http has let go of the socket: a ServerResponse is attached to it by hand, so filters and the
 * router answer an upgrade request exactly as any other (404 NR, 503 UH, 403 RBAC…), and the router
 * hands a forwarded one to an UpgradeTunnel. The bytes after the request head go back on the socket.
 */
export function onUpgradeRequest(
  listener: ListenerRuntime,
  req: IncomingMessage,
  duplex: Duplex,
  head: Buffer,
): void {
  const socket = duplex as Socket
  socket.on('error', () => socket.destroy())
  if (head.length > 0) socket.unshift(head)
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket)
  res.once('finish', () => closeAfterReply(socket))
  handleUpgradeRequest(listener, req, res)
}

/** A reply that did not switch protocols ends the connection: FIN, drop what the client still sends. */
function closeAfterReply(socket: Socket): void {
  socket.end()
  socket.resume()
  const timer = setTimeout(() => socket.destroy(), lingerMs)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
