// Where a connection known to speak HTTP/2 (the prior-knowledge preface, or TLS with ALPN h2) is handed to the listener's HTTP/2 server.

import type { Socket } from 'node:net'
import type { ListenerRuntime } from './listener-runtime.ts'

/** `socket` is paused, with its first bytes still unread in its buffer. */
export function serveHttp2Connection(socket: Socket, listener: ListenerRuntime): void {
  listener.http2.serve(socket)
}
