// Where a connection that protocol detection found to be HTTP/2 (prior knowledge) is served.

import type { Socket } from 'node:net'
import { log } from '../telemetry/log.ts'
import type { ListenerRuntime } from './listener-runtime.ts'

/** An empty SETTINGS frame (the server's connection preface), then GOAWAY(last stream 0, HTTP_1_1_REQUIRED). */
const refusal = Buffer.from([
  // SETTINGS: length 0, type 0x4, flags 0, stream 0
  0, 0, 0, 0x04, 0, 0, 0, 0, 0,
  // GOAWAY: length 8, type 0x7, flags 0, stream 0; last-stream-id 0; error code 0xd (HTTP_1_1_REQUIRED)
  0, 0, 8, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0d,
])

/** How long a refused connection may take to read the GOAWAY and close before it is destroyed. */
const lingerMs = 1_000

/**
 * The hook for the HTTP/2 codec: `socket` is paused with the client's preface still unread in its
 * buffer (hand it to an http2 server with `emit('connection', socket)`, then resume it). Until that
 * codec exists, the connection is refused cleanly: a GOAWAY that tells the client to use HTTP/1.1.
 */
export function serveHttp2Connection(socket: Socket, listener: ListenerRuntime): void {
  log.info(
    `listener ${listener.model.name}: HTTP/2 connection from ${socket.remoteAddress}:${socket.remotePort} ` +
      'refused with GOAWAY HTTP_1_1_REQUIRED (HTTP/2 is not served yet)',
  )
  socket.on('error', () => socket.destroy())
  socket.end(refusal)
  // Read and drop what the client sends until it closes, so the close is clean (no reset).
  socket.resume()
  const timer = setTimeout(() => socket.destroy(), lingerMs)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
