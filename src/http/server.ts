// The downstream HTTP/1.1 server of one listener: every request enters the filter chain here.

import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { createServer, STATUS_CODES } from '../protocol/node-http.ts'
import type { HttpListener } from './http-listener.ts'
import { RequestContext } from './request-context.ts'
import { RequestHeadersDeadline } from './request-headers-deadline.ts'
import { startRequest } from './request-start.ts'
import { sendLocalReply } from './respond.ts'
import { expireIdleStream } from './stream-idle-timeout.ts'

/**
 * The request a response answers, for its stream idle timeout. Kept on the response, not on the socket:
 * node:http drops the socket's reference to a finished response (`_httpMessage`), so an idle keep-alive
 * connection no longer holds its last request's RequestContext, headers, upstream exchange and body
 * chunk (5.8 KiB of heap per idle connection at 10,000, bench/results/connection-heap-2026-12-07.md).
 */
const kRequestContext = Symbol('outrigger.requestContext')

type ServedResponse = ServerResponse & { [kRequestContext]?: RequestContext }
type ServedSocket = Socket & { _httpMessage?: ServedResponse | null }

/** How long a connection rejected for a malformed request lingers (Envoy's delayed_close_timeout). */
const delayedCloseMs = 1_000

/**
 * node:http's shouldUpgradeCallback: which `Connection: upgrade` requests reach the `upgrade` event (and
 * have `req.upgrade` set) to become tunnels. Envoy's HTTP/1 codec ignores an h2c upgrade and serves the
 * request as HTTP/1.1; every other token is tried.
 */
function acceptsUpgrade(req: IncomingMessage): boolean {
  const token = req.headers.upgrade
  return token !== undefined && token.trim().toLowerCase() !== 'h2c'
}

/**
 * The HTTP/1.1 server of a listener, under the bootstrap's `limits`: node:http rejects a head above
 * maxRequestHeadersKb (request line included, 431, as Envoy's max_request_headers_kb covers the path),
 * bounds later requests' heads by headersTimeout, and its socket timeout is the stream idle timeout
 * while a request is in flight and the idle timeout between requests (the 'timeout' event below).
 */
export function createHttpServer(listener: HttpListener): Server {
  const limits = listener.limits
  const server = createServer(
    {
      maxHeaderSize: limits.maxRequestHeadersBytes,
      // Between requests: Envoy's connection idle_timeout (node adds keepAliveTimeoutBuffer, here none).
      keepAliveTimeout: limits.idleTimeoutMs,
      keepAliveTimeoutBuffer: 0,
      // Bodies may stream for as long as they need; the route timeout is the proxy's clock.
      requestTimeout: 0,
      headersTimeout: limits.requestHeadersTimeoutMs,
      // node:http checks headersTimeout on this interval (30 s by default, which let a slow head live ~90 s).
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, limits.requestHeadersTimeoutMs / 10)),
      noDelay: true,
      // WebSocket and other upgrades reach the 'upgrade' event; h2c is served as HTTP/1.1, as Envoy does.
      shouldUpgradeCallback: acceptsUpgrade,
    },
    (req, res) => handleRequest(listener, req, res),
  )
  // node:http's own cap on header fields truncates silently: keep it just above the limit, which handleRequest enforces.
  server.maxHeadersCount = limits.maxRequestHeadersCount + 1
  // The socket timeout while a request is in flight (node sets it again at each request).
  server.timeout = limits.streamIdleTimeoutMs
  server.on('timeout', (socket: ServedSocket) => onSocketTimeout(listener, socket))
  // Connections already answered for a parse error: the parser reports the error again on every later read.
  const rejected = new WeakSet<Duplex>()
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
    onClientError(listener, rejected, err, socket),
  )
  return server
}

/**
 * A connection with no activity for the socket's timeout. With a response in flight that is Envoy's
 * stream idle timeout (expireIdleStream: 504 or 408 `stream timeout`, flag SI, before the response
 * started; a reset after); without one it is the connection manager's idle timeout (closed).
 */
function onSocketTimeout(listener: HttpListener, socket: ServedSocket): void {
  const res = socket._httpMessage
  if (res == null || res.writableEnded) {
    // A draining listener closes its idle connections at once (listener-drain.ts): no idle timeout.
    if (!listener.draining) listener.countLimit('downstream_cx_idle_timeout')
    socket.destroy()
    return
  }
  const ctx = res[kRequestContext]
  if (ctx === undefined) {
    listener.countLimit('downstream_rq_idle_timeout')
    socket.destroy()
    return
  }
  expireIdleStream(ctx)
}

/**
 * A request the codec cannot parse gets Envoy's codec-error reply (status, reason phrase as the body,
 * `connection: close`). Node's default handler destroys the socket right after writing, which resets
 * the connection when request bytes are still unread, so the client may never see the status; here the
 * write side is closed after the reply and the rest of the request is read and dropped until the client
 * closes or `delayedCloseMs` passes.
 */
function onClientError(
  listener: HttpListener,
  rejected: WeakSet<Duplex>,
  err: NodeJS.ErrnoException,
  socket: Duplex,
): void {
  if (rejected.has(socket)) return
  rejected.add(socket)
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable) {
    socket.destroy()
    return
  }
  listener.countLimit(
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'downstream_rq_header_timeout' : 'downstream_cx_protocol_error',
  )
  const status =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
        ? 413
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 408
          : 400
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
  if (inFlight != null && !inFlight.writableEnded) {
    if (inFlight.req.complete) {
      // The bad request was pipelined behind requests still being answered: their answers go out first.
      rejectAfterPipelined(socket, status)
      return
    }
    // The error is in the body of the request being proxied; once its response has started,
    // the only signal left is a reset. Otherwise the reply goes out, and the close aborts the upstream.
    if (inFlight.headersSent) {
      socket.destroy()
      return
    }
  }
  rejectConnection(socket, status)
}

/**
 * Waits for every response queued on the connection, then rejects it. node:http answers pipelined
 * requests in order: when one response finishes, it hands the socket to the next (`_httpMessage`)
 * before our 'finish' listener runs, so each turn sees the next one still owed.
 */
function rejectAfterPipelined(socket: Duplex, status: number): void {
  const owed = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
  if (owed == null || owed.writableFinished || owed.destroyed) {
    rejectConnection(socket, status)
    return
  }
  let settled = false
  const next = (): void => {
    if (settled) return
    settled = true
    rejectAfterPipelined(socket, status)
  }
  owed.once('finish', next)
  owed.once('close', next)
}

function rejectConnection(socket: Duplex, status: number): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = STATUS_CODES[status] ?? ''
  socket.end(
    `HTTP/1.1 ${status} ${body}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n` +
      `connection: close\r\n\r\n${body}`,
  )
  const timer = setTimeout(() => socket.destroy(), delayedCloseMs)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}

/**
 * A request node:http delivered through its `upgrade` event (accepted by acceptsUpgrade): marked so the
 * router tunnels it. node:http sets `upgrade` on such a request itself, but not as documented API.
 */
export function handleUpgradeRequest(
  listener: HttpListener,
  req: IncomingMessage & { upgrade?: boolean },
  res: ServerResponse,
): void {
  req.upgrade = true
  handleRequest(listener, req, res)
}

export function handleRequest(listener: HttpListener, req: IncomingMessage, res: ServerResponse): void {
  RequestHeadersDeadline.met(req.socket)
  const ctx = new RequestContext(req, res, req, listener, listener.proxyModel)
  ;(res as ServedResponse)[kRequestContext] = ctx
  // node:http stops counting at maxHeadersCount + 1 fields, so more than the limit is always seen here.
  if (req.rawHeaders.length > listener.limits.maxRequestHeadersCount * 2) {
    listener.countLimit('downstream_cx_protocol_error')
    sendLocalReply(ctx, 'tooManyRequestHeaders')
    return
  }
  if (hasSecondHost(req.rawHeaders)) {
    listener.countLimit('downstream_cx_protocol_error')
    sendLocalReply(ctx, 'multipleHostFields')
    return
  }
  startRequest(ctx)
}

/** Whether a request head has more than one Host field (RFC 9112 §3.2: 400). Names are compared by length first. */
function hasSecondHost(raw: readonly string[]): boolean {
  let seen = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue
    if (seen) return true
    seen = true
  }
  return false
}
