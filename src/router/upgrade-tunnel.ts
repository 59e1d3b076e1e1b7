// An HTTP/1.1 Upgrade (WebSocket or another token) sent to one endpoint: the request is replayed, a 101 becomes a tunnel.

import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { applyResponseEdits, buildDownstreamHeaders } from '../http/downstream-headers.ts'
import type { RequestContext } from '../http/request-context.ts'
import { sendLocalReply } from '../http/respond.ts'
import { runResponseHeaders } from '../http/response-headers-phase.ts'
import { request } from '../protocol/node-http.ts'
import { removeHeaders } from '../route/header-list.ts'
import type { TunnelStats } from '../tcp/tcp-context.ts'
import { tunnelLimits } from '../tcp/tcp-proxy.ts'
import { Tunnel } from '../tcp/tunnel.ts'
import type { Cluster } from '../upstream/cluster.ts'
import { classifyUpstreamError, transportFailureReason } from '../upstream/failure.ts'
import type { UpstreamEndpoint } from '../upstream/upstream-endpoint.ts'
import { Http2Tunnel } from './http2-tunnel.ts'

/** Fields of a 101 that mean nothing in an HTTP/2 200 (RFC 8441 §5). */
const upgradeResponseOnly: ReadonlySet<string> = new Set(['sec-websocket-accept'])

export interface UpgradeSpec {
  readonly path: string
  /** The upstream request headers, hop-by-hop ones removed (the upgrade pair is added back here). */
  readonly headers: string[]
}

class ConnectTimeoutError extends Error {
  readonly code = 'OUTRIGGER_CONNECT_TIMEOUT'
  constructor() {
    super('upstream connect timeout')
    this.name = 'ConnectTimeoutError'
  }
}

class RouteTimeoutError extends Error {
  readonly code = 'OUTRIGGER_UPSTREAM_TIMEOUT'
  constructor() {
    super('upstream request timeout')
    this.name = 'RouteTimeoutError'
  }
}

/**
 * Envoy's upgrade handling for HTTP/1.1: the request goes upstream with `Connection: upgrade` and its
 * `Upgrade` token; a 101 answer goes back with the upstream's headers (hop-by-hop ones included) and the
 * two sockets are joined; any other answer is relayed as a normal response and the connection closes.
 * Failures before an answer are local replies (503 UF / UC, 504 UT), as for any request.
 */
export class UpgradeTunnel implements TunnelStats {
  bytesReceived = 0
  bytesSent = 0
  terminationDetails = ''
  readonly #ctx: RequestContext
  readonly #endpoint: UpstreamEndpoint
  readonly #cluster: Cluster
  #upstream: Socket | undefined
  #request: ClientRequest | undefined
  #timer: NodeJS.Timeout | undefined
  #startedAt = 0
  #connected = false
  #answered = false
  #failed = false
  #released = false

  constructor(ctx: RequestContext, endpoint: UpstreamEndpoint, cluster: Cluster) {
    this.#ctx = ctx
    this.#endpoint = endpoint
    this.#cluster = cluster
  }

  start(spec: UpgradeSpec): void {
    const ctx = this.#ctx
    const endpoint = this.#endpoint
    endpoint.acquire()
    ctx.upstream = endpoint
    this.#startedAt = performance.now()
    const headers = [...spec.headers, 'connection', 'upgrade', 'upgrade', ctx.rawHeader('upgrade') ?? '']
    // Plain, or TLS with the endpoint's DestinationRule tls / auto-mTLS: the request waits for the handshake.
    const socket = endpoint.connectUpgrade(this.#onConnectResult)
    this.#upstream = socket
    this.#timer = setTimeout(this.#onConnectTimeout, this.#cluster.model.connectTimeoutMs)
    const req = request({
      method: ctx.method,
      path: spec.path,
      headers,
      setHost: false,
      createConnection: () => socket,
    })
    this.#request = req
    req.on('upgrade', this.#onUpgrade)
    req.on('response', this.#onResponse)
    req.on('error', this.#onError)
    req.end()
    this.#downstreamClosing().once('close', this.#onDownstreamClose)
  }

  /** What closes when the client goes away: its connection (HTTP/1.1), or its stream (HTTP/2). */
  #downstreamClosing(): {
    once(e: 'close', l: () => void): unknown
    off(e: 'close', l: () => void): unknown
  } {
    const ctx = this.#ctx
    return ctx.http2 ? ctx.res : ctx.req.socket
  }

  readonly #onConnectResult = (err: Error | undefined): void => {
    if (err === undefined) this.#onConnect()
    else this.#onError(err)
  }

  #onConnect(): void {
    this.#connected = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    const timeoutMs = this.#ctx.route?.timeoutMs ?? 0
    if (timeoutMs > 0) this.#timer = setTimeout(this.#onRouteTimeout, timeoutMs)
  }

  readonly #onConnectTimeout = (): void => {
    this.#timer = undefined
    this.#onError(new ConnectTimeoutError())
    this.#upstream?.destroy()
  }

  readonly #onRouteTimeout = (): void => {
    this.#timer = undefined
    this.#request?.destroy(new RouteTimeoutError())
  }

  /** The client went away before the upstream answered: abandon the upstream request. */
  readonly #onDownstreamClose = (): void => {
    if (this.#answered) return
    this.#answered = true
    this.#stopWaiting()
    this.#request?.destroy()
    this.#release()
  }

  /** 101: write the upstream's status line and headers as they came, then join the sockets. */
  readonly #onUpgrade = (res: IncomingMessage, upstream: Socket, head: Buffer): void => {
    const ctx = this.#ctx
    if (this.#answered) {
      upstream.destroy()
      return
    }
    this.#answered = true
    this.#stopWaiting()
    this.#endpoint.reportStatus(101)
    ctx.upstreamServiceTime = Math.round(performance.now() - this.#startedAt)
    ctx.responseCodeDetails = 'via_upstream'
    if (ctx.http2) {
      this.#joinHttp2(res, upstream, head)
      return
    }
    const headers: string[] = []
    const raw = res.rawHeaders
    for (let i = 0; i < raw.length; i += 2) headers.push(raw[i], raw[i + 1])
    applyResponseEdits(ctx, headers)
    runResponseHeaders(ctx, 101, headers)
    let text = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`
    text += '\r\n'
    const down = ctx.req.socket
    ;(ctx.res as ServerResponse).detachSocket(down)
    down.write(text, 'latin1')
    if (head.length > 0) {
      this.bytesSent += head.length
      down.write(head)
    }
    new Tunnel(this, down, upstream, { ...tunnelLimits(this.#cluster), onClose: this.#release }).start()
  }

  /**
   * RFC 8441: the client's extended CONNECT is answered 200 once the upstream switched (101), without
   * the HTTP/1.1 upgrade fields (Envoy's transformUpgradeResponseFromH1toH2); the stream carries the bytes.
   */
  #joinHttp2(res: IncomingMessage, upstream: Socket, head: Buffer): void {
    const ctx = this.#ctx
    const headers = buildDownstreamHeaders(ctx, res.headersDistinct)
    removeHeaders(headers, upgradeResponseOnly)
    runResponseHeaders(ctx, 200, headers)
    ctx.res.writeHead(200, headers)
    new Http2Tunnel(this, ctx.body, ctx.res, upstream, this.#release).start(head)
  }

  /** The upstream did not switch: its answer goes to the client as it is, then the connection closes. */
  readonly #onResponse = (res: IncomingMessage): void => {
    const ctx = this.#ctx
    if (this.#answered) {
      res.destroy()
      return
    }
    this.#answered = true
    this.#stopWaiting()
    const status = res.statusCode ?? 502
    this.#endpoint.reportStatus(status)
    ctx.upstreamServiceTime = Math.round(performance.now() - this.#startedAt)
    ctx.responseCodeDetails = 'via_upstream'
    const headers = buildDownstreamHeaders(ctx, res.headersDistinct)
    if (!ctx.http2) headers.push('connection', 'close')
    runResponseHeaders(ctx, status, headers)
    if (ctx.http2) {
      ctx.res.writeHead(status, headers)
      res.on('data', (chunk: Buffer) => ctx.res.write(chunk))
      res.once('end', () => ctx.res.end())
    } else {
      const out = ctx.res as ServerResponse
      out.writeHead(status, res.statusMessage, headers)
      res.pipe(out)
    }
    res.once('end', () => this.#upstream?.destroy())
    ctx.res.once('close', this.#release)
  }

  readonly #onError = (err: Error): void => {
    // A failed connection reports once through the connect result, again through the request: answer once.
    if (this.#failed) return
    const ctx = this.#ctx
    this.#stopWaiting()
    if (this.#answered) {
      // The response was being relayed: the only signal left is closing the client's connection.
      if (!ctx.res.writableEnded) {
        if (ctx.http2) ctx.res.destroy()
        else ctx.req.socket.destroy()
      }
      return
    }
    this.#answered = true
    this.#failed = true
    const kind =
      err instanceof RouteTimeoutError
        ? 'timeout'
        : err instanceof ConnectTimeoutError
          ? 'connectFailure'
          : classifyUpstreamError(err, this.#connected)
    if (kind !== 'timeout') this.#endpoint.reportFailure(kind)
    this.#release()
    sendLocalReply(ctx, kind, kind === 'connectFailure' ? transportFailureReason(err) : undefined)
  }

  #stopWaiting(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#downstreamClosing().off('close', this.#onDownstreamClose)
  }

  readonly #release = (): void => {
    if (this.#released) return
    this.#released = true
    this.#endpoint.release()
  }
}
