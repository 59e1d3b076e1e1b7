// The request-headers timeout of a new connection: closed unless its first request's headers arrive in time, sniffing and TLS handshake included.

import type { Socket } from 'node:net'

const kDeadline = Symbol('outrigger.requestHeadersDeadline')

/** A socket that may carry a deadline, or a TLS socket whose wrapped TCP socket carries it (`_parentWrap`). */
interface DeadlineCarrier {
  [kDeadline]?: RequestHeadersDeadline | undefined
  readonly _parentWrap?: DeadlineCarrier | null
}

/**
 * One per accepted connection of an HTTP-capable port (one timer; nothing per request). Armed at accept,
 * it closes the connection when the first request's headers (an HTTP/1.1 head, an HTTP/2 HEADERS frame)
 * are not complete within the bootstrap's `limits.requestHeadersTimeout` (nginx's client_header_timeout,
 * Envoy's request_headers_timeout counted from accept): a client that sends nothing, one that trickles
 * its head, and one still being sniffed alike. Later requests on a kept-alive HTTP/1.1 connection are
 * bounded by node:http's headersTimeout, set to the same value.
 */
export class RequestHeadersDeadline {
  readonly #socket: Socket
  readonly #onExpired: () => void
  #timer: NodeJS.Timeout | undefined

  private constructor(socket: Socket, timeoutMs: number, onExpired: () => void) {
    this.#socket = socket
    this.#onExpired = onExpired
    this.#timer = setTimeout(RequestHeadersDeadline.#expired, timeoutMs, this)
    socket.once('close', this.#cancelOnClose)
  }

  /** Arms the deadline on `socket`; `onExpired` counts it before the socket is destroyed. No-op for 0 ms. */
  static arm(socket: Socket, timeoutMs: number, onExpired: () => void): void {
    if (timeoutMs <= 0) return
    ;(socket as DeadlineCarrier)[kDeadline] = new RequestHeadersDeadline(socket, timeoutMs, onExpired)
  }

  /**
   * The first request's headers are in (or the connection turned out to be TCP): disarms the deadline of
   * `socket`, or of the TCP socket a TLS socket wraps. Two property reads when there is none.
   */
  static met(socket: object | undefined): void {
    if (socket === undefined) return
    const carrier = socket as DeadlineCarrier
    let deadline = carrier[kDeadline]
    if (deadline === undefined) {
      const parent = carrier._parentWrap
      if (parent == null) return
      deadline = parent[kDeadline]
      if (deadline === undefined) return
    }
    deadline.#cancel()
  }

  #cancel(): void {
    ;(this.#socket as DeadlineCarrier)[kDeadline] = undefined
    this.#socket.off('close', this.#cancelOnClose)
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  readonly #cancelOnClose = (): void => {
    this.#cancel()
  }

  static #expired(self: RequestHeadersDeadline): void {
    self.#timer = undefined
    self.#cancel()
    self.#onExpired()
    self.#socket.destroy()
  }
}
