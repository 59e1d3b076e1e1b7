// Hands each accepted connection to what serves it: the HTTP/1 codec, the TCP proxy, or protocol detection first.

import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { RequestHeadersDeadline } from '../http/request-headers-deadline.ts'
import { type ConnectionPeer, setConnectionPeer } from '../protocol/connection-peer.ts'
import { PEER_EXCHANGE_ALPN, PeerExchange, type PeerExchangeDone } from '../tcp/peer-exchange.ts'
import { TcpContext } from '../tcp/tcp-context.ts'
import { TcpProxy } from '../tcp/tcp-proxy.ts'
import { log } from '../telemetry/log.ts'
import type { WorkloadMetadata } from '../telemetry/workload-metadata.ts'
import type { MtlsPort, MtlsRefusal } from '../tls/mtls-terminator.ts'
import { TLS_HANDSHAKE_TIMEOUT_MS } from '../tls/tls-defaults.ts'
import { ConnectionSniffer, type SniffDone } from './detect-connection.ts'
import type { Detection } from './detect-protocol.ts'
import { serveHttp2Connection } from './http2-connection.ts'
import { connectionPeerOf, innerIsTcp, mtlsAction, mtlsSniffMode } from './inbound-mtls.ts'
import type { ListenerRuntime } from './listener-runtime.ts'
import type { DetectionStats } from './listener-stats.ts'

type ConnectionListener = (this: Server, socket: Socket) => void

/**
 * Takes over the listening HTTP server's `connection` event. A declared HTTP port reads the first bytes
 * only to tell the HTTP/2 preface from HTTP/1.1; the serve mode is read per connection, so a reload
 * that changes a port's protocol keeps the socket bound.
 */
export class ConnectionDispatcher {
  readonly #listener: ListenerRuntime
  readonly #server: Server
  readonly #http: ConnectionListener
  /** This listener's mTLS handshakes, made at its first mTLS connection. */
  #mtlsPort: MtlsPort | undefined
  /** Where the first sniff of each connection is counted (an mTLS connection's inner sniff is not). */
  readonly #detection: DetectionStats | undefined

  /** Counts a new connection in, or refuses it (closed) over a connection limit. */
  readonly #admit: ((socket: Socket) => boolean) | undefined

  constructor(
    listener: ListenerRuntime,
    server: Server,
    detection?: DetectionStats,
    admit?: (socket: Socket) => boolean,
  ) {
    this.#detection = detection
    this.#admit = admit
    const own = server.listeners('connection')
    if (own.length !== 1) throw new Error('expected node:http to register exactly one connection listener')
    this.#listener = listener
    this.#server = server
    this.#http = own[0] as ConnectionListener
    server.removeListener('connection', this.#http)
    server.on('connection', this.#dispatch)
  }

  readonly #dispatch = (socket: Socket): void => {
    if (this.#admit !== undefined && !this.#admit(socket)) return
    const model = this.#listener.model
    // Whatever may carry HTTP must show a request's headers in time; TCP found by sniffing disarms it.
    if (model.serve !== 'tcp' && model.serve !== 'tls') {
      RequestHeadersDeadline.arm(socket, this.#listener.limits.requestHeadersTimeoutMs, this.#headersTimedOut)
    }
    if (this.#mtlsMode() !== undefined) {
      const timeoutMs = model.serve === 'http' ? 0 : model.protocolDetectionTimeoutMs
      // A client that never sends a whole ClientHello is closed as one that never finishes its handshake.
      const stalled = setTimeout(
        () => this.#refuse(socket, 'handshake_timeout', `no ClientHello in ${TLS_HANDSHAKE_TIMEOUT_MS} ms`),
        TLS_HANDSHAKE_TIMEOUT_MS,
      )
      const clearStalled = (): void => clearTimeout(stalled)
      socket.once('close', clearStalled)
      const onSniffed: SniffDone = (sniffed, detection, leftover, replay) => {
        // Nothing of the sniff stays on the connection once it is done (its close listener neither).
        clearStalled()
        socket.off('close', clearStalled)
        this.#onMtlsSniffed(sniffed, detection, leftover, replay)
      }
      new ConnectionSniffer(socket, mtlsSniffMode(model.serve), timeoutMs, onSniffed, this.#detection).start()
      return
    }
    switch (model.serve) {
      case 'http':
        // HTTP/1.1 or HTTP/2 with prior knowledge, told apart by the first bytes (Envoy's AUTO codec).
        new ConnectionSniffer(socket, 'http', 0, this.#onSniffed).start()
        return
      case 'tcp': {
        const ctx = new TcpContext(this.#listener, socket)
        new TcpProxy(ctx).start(model.tcpRoutes.matchTcp(ctx))
        return
      }
      case 'tls':
      case 'detect':
        new ConnectionSniffer(
          socket,
          model.serve,
          model.protocolDetectionTimeoutMs,
          this.#onSniffed,
          this.#detection,
        ).start()
        return
      case 'tls-terminate':
        this.#listener.tls.accept(socket, this.#onTlsSecure)
        return
    }
  }

  readonly #headersTimedOut = (): void => {
    this.#listener.countLimit('downstream_rq_header_timeout')
  }

  /**
   * STRICT or PERMISSIVE when PeerAuthentication applies to this port; undefined when it serves as
   * without a policy: DISABLE, or PERMISSIVE without a workload certificate to terminate mTLS with.
   */
  #mtlsMode(): 'STRICT' | 'PERMISSIVE' | undefined {
    const mode = this.#listener.model.mtls?.mode
    if (mode === 'STRICT') return mode
    return mode === 'PERMISSIVE' && this.#listener.mtls !== undefined ? mode : undefined
  }

  readonly #onMtlsSniffed = (
    socket: Socket,
    detection: Detection,
    leftover: Buffer | undefined,
    replay?: Buffer,
  ): void => {
    const listener = this.#listener
    const mode = this.#mtlsMode() ?? 'PERMISSIVE'
    const action = mtlsAction(mode, listener.model.serve, detection, listener.mtls !== undefined)
    if (action === 'plain' || action === 'passthrough') {
      this.#onSniffed(socket, detection, leftover, replay)
      return
    }
    if (action !== 'terminate') {
      this.#refuse(socket, action, `${mode} (${listener.model.mtls?.policy || 'default'})`)
      return
    }
    if (leftover !== undefined || listener.mtls === undefined) {
      socket.destroy()
      return
    }
    this.#mtlsPort ??= listener.mtls.port({
      secure: (tls) => this.#onMtlsSecure(tls),
      refused: (reason, detail, refused) => this.#refuse(refused, reason, detail),
    })
    this.#mtlsPort.accept(socket)
  }

  #refuse(socket: Socket, reason: MtlsRefusal, detail: string): void {
    const listener = this.#listener
    listener.countRefusal(reason)
    log.info(
      `listener ${listener.model.name}: connection from ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'} refused by PeerAuthentication: ${reason}: ${detail}`,
    )
    socket.destroy()
  }

  /** An mTLS connection: its peer marks the socket, then it is served by what the port carries inside. */
  #onMtlsSecure(socket: TLSSocket): void {
    RequestHeadersDeadline.followTls(socket)
    const listener = this.#listener
    const peer = connectionPeerOf(socket)
    setConnectionPeer(socket, peer)
    socket.on('error', this.#onMtlsError)
    // The client's sidecar proxies TCP and offered the exchange: frames first (Istio's TCPListenerMx).
    if (socket.alpnProtocol === PEER_EXCHANGE_ALPN) {
      const onExchanged: PeerExchangeDone = (metadata, leftover) =>
        this.#serveMtls(socket, peer, metadata, leftover)
      new PeerExchange(socket, listener.peerMetadata, onExchanged).start()
      return
    }
    this.#serveMtls(socket, peer, undefined, undefined)
  }

  /** An mTLS connection's error, logged: one listener for every connection of this listener. */
  readonly #onMtlsError = (err: Error): void => {
    log.debug(`listener ${this.#listener.model.name}: mTLS connection: ${err.message}`)
  }

  /** Serves an mTLS connection by what its port carries; `afterFrame`: app bytes read with the peer's exchange frame. */
  #serveMtls(
    socket: TLSSocket,
    peer: ConnectionPeer,
    metadata: WorkloadMetadata | undefined,
    afterFrame: Buffer | undefined,
  ): void {
    const listener = this.#listener
    const serve = listener.model.serve
    if (serve === 'tcp' || serve === 'tls' || (serve === 'detect' && innerIsTcp(socket.alpnProtocol))) {
      RequestHeadersDeadline.met(socket)
      const ctx = new TcpContext(listener, socket)
      ctx.peer = peer.identity
      ctx.downstreamPeerMetadata = metadata
      new TcpProxy(ctx, afterFrame).start(listener.model.tcpRoutes.matchTcp(ctx))
      return
    }
    if (afterFrame !== undefined && !socket.readableEnded) socket.unshift(afterFrame)
    // HTTP/2 or HTTP/1.1 is told by the decrypted bytes (Envoy's AUTO codec), whatever ALPN chose.
    const mode = serve === 'http' ? 'http' : 'detect'
    const onDone: SniffDone = (s, detection, leftover, replay) =>
      this.#serveInner(s, detection, leftover, replay, peer)
    new ConnectionSniffer(socket, mode, listener.model.protocolDetectionTimeoutMs, onDone).start()
  }

  /** The decrypted stream of an mTLS connection, sniffed: HTTP as on any connection, TCP with the peer. */
  #serveInner(
    socket: Socket,
    detection: Detection,
    leftover: Buffer | undefined,
    replay: Buffer | undefined,
    peer: ConnectionPeer,
  ): void {
    if (replay !== undefined || detection.protocol === 'http2' || detection.protocol === 'http1') {
      this.#onSniffed(socket, detection, leftover, replay)
      return
    }
    if (leftover !== undefined && this.#listener.model.serve === 'http') {
      socket.destroy()
      return
    }
    RequestHeadersDeadline.met(socket)
    const ctx = new TcpContext(this.#listener, socket)
    ctx.peer = peer.identity
    new TcpProxy(ctx, leftover).start(this.#listener.model.tcpRoutes.matchTcp(ctx))
  }

  readonly #onSniffed = (
    socket: Socket,
    detection: Detection,
    leftover: Buffer | undefined,
    replay?: Buffer,
  ): void => {
    const listener = this.#listener
    if (replay !== undefined) {
      // HTTP/1: node:http takes the socket, and its parser reads the sniffed bytes as the first 'data'.
      this.#http.call(this.#server, socket)
      socket.emit('data', replay)
      return
    }
    if (leftover === undefined && detection.protocol === 'http2') {
      serveHttp2Connection(socket, listener)
      return
    }
    if (listener.model.serve === 'http') {
      // The client closed before its first bytes told HTTP/1.1 from HTTP/2: nothing to serve.
      socket.destroy()
      return
    }
    RequestHeadersDeadline.met(socket)
    const ctx = new TcpContext(listener, socket)
    const routes = listener.model.tcpRoutes
    const hello = detection.clientHello
    if (hello !== undefined) {
      ctx.protocol = 'tls'
      ctx.sni = hello.sni
      ctx.alpn = hello.alpn
    }
    // A declared TLS port routes by SNI only; on a sniffed port, TLS that no tls[] route takes is TCP.
    const route =
      listener.model.serve === 'tls'
        ? routes.matchTls(ctx)
        : hello !== undefined
          ? (routes.matchTls(ctx) ?? routes.matchTcp(ctx))
          : routes.matchTcp(ctx)
    new TcpProxy(ctx, leftover).start(route)
  }

  /** A TLS-terminated connection: ALPN h2 goes to HTTP/2, anything else to HTTP/1.1; a TLS port's stream is TCP. */
  readonly #onTlsSecure = (socket: TLSSocket): void => {
    RequestHeadersDeadline.followTls(socket)
    const listener = this.#listener
    if (listener.model.tls?.inner === 'tcp') {
      RequestHeadersDeadline.met(socket)
      const ctx = new TcpContext(listener, socket)
      new TcpProxy(ctx).start(listener.model.tcpRoutes.matchTcp(ctx))
      return
    }
    if (socket.alpnProtocol === 'h2') serveHttp2Connection(socket, listener)
    else this.#http.call(this.#server, socket)
  }
}
