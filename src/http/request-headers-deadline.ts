// The request-headers timeout of a new connection: closed unless its first request's headers arrive in time, sniffing and TLS handshake included.

import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

const kDeadline = Symbol('outrigger.requestHeadersDeadline')

/** A socket that may carry a deadline. */
interface DeadlineCarrier {
  [kDeadline]?: RequestHeadersDeadline | undefined
}

/** node's _tls_wrap keeps the socket a TLS socket wraps on its handle (`_wrapHandle`: `res._parentWrap = wrap`), not on the TLS socket. */
interface TlsHandle {
  readonly _parentWrap?: (Socket & DeadlineCarrier) | null
}

/**
 * One per accepted connection of an HTTP-capable port (one timer; nothing per request). Armed at accept,
 * it closes the connection when the first request's headers (an HTTP/1.1 head, an HTTP/2 HEADERS frame)
 * are not complete within the bootstrap's `limits.requestHeadersTimeout` (nginx's client_header_timeout,
 * Envoy's request_headers_timeout counted from accept): a client that sends nothing, one that trickles
 * its head, and one still being sniffed alike. A TLS connection's deadline moves to its TLS socket once
 * the handshake is done (`followTls`), so that the first request on it disarms it. Later requests on a
 * kept-alive HTTP/1.1 connection are bounded by node:http's headersTimeout, set to the same value, which
 * only runs while a head is arriving: an idle connection between requests is the idle timeout's.
 */
export class RequestHeadersDeadline {
  /** The accepted TCP socket: destroyed at expiry. */
  readonly #socket: Socket
  /** The socket whose slot holds this deadline: the TCP socket, then its TLS socket once handshaken. */
  #holder: Socket
  readonly #onExpired: () => void
  #timer: NodeJS.Timeout | undefined

  private constructor(socket: Socket, timeoutMs: number, onExpired: () => void) {
    this.#socket = socket
    this.#holder = socket
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
   * The TLS handshake of a connection armed at accept is done: its deadline now runs on `tls`, which the
   * first request's headers arrive on (the time left is what was left: the handshake counted). Once per
   * connection.
   */
  static followTls(tls: TLSSocket): void {
    const wrapped = (tls as TLSSocket & { _handle?: TlsHandle | null })._handle?._parentWrap
    const deadline = wrapped?.[kDeadline]
    if (wrapped == null || deadline === undefined) return
    wrapped[kDeadline] = undefined
    ;(tls as DeadlineCarrier)[kDeadline] = deadline
    deadline.#holder = tls
  }

  /**
   * The first request's headers are in (or the connection turned out to be TCP): disarms the deadline of
   * `socket` (the TCP socket, or the TLS socket it followed). One property read when there is none.
   */
  static met(socket: object | undefined): void {
    if (socket === undefined) return
    const deadline = (socket as DeadlineCarrier)[kDeadline]
    if (deadline !== undefined) deadline.#cancel()
  }

  #cancel(): void {
    ;(this.#holder as DeadlineCarrier)[kDeadline] = undefined
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
    self.#holder.destroy()
    self.#socket.destroy()
  }
}
