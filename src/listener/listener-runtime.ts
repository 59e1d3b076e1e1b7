// A bound listener at run time: what its HTTP and TCP servers read (its model, filters, drain state, the proxy's clusters), and its TLS and HTTP/2 servers.

import type { ListenerModel, Model } from '../config/model.ts'
import type { HttpFilter } from '../http/filter.ts'
import type { HttpListener } from '../http/http-listener.ts'
import { Http2Downstream } from '../http/http2-server.ts'
import type { PathNormalizer } from '../http/path-normalization.ts'
import type { Limits } from '../protocol/limits.ts'
import type { OverloadState } from '../protocol/overload.ts'
import type { TcpListener } from '../tcp/tcp-listener.ts'
import type { HttpLimitStatName, HttpLimitStats } from '../telemetry/http-limit-stats.ts'
import type { MtlsRefusal, MtlsTerminator } from '../tls/mtls-terminator.ts'
import { TlsTerminator } from '../tls/tls-terminator.ts'

/** What every listener reads from the running proxy (the ProxyRuntime). */
export interface ProxyState {
  /** The current model; a reload replaces it atomically. */
  readonly model: Model
  readonly clusters: TcpListener['clusters']
  readonly tcpStats: TcpListener['tcpStats']
  readonly observers: TcpListener['observers']
  readonly peerMetadata: TcpListener['peerMetadata']
  /** Terminates inbound mTLS with the workload certificate; undefined without bootstrap `tls`. */
  readonly mtls: MtlsTerminator | undefined
  /** The connection manager's path normalization (bootstrap `pathNormalization`), the same on every listener. */
  readonly pathNormalizer: PathNormalizer
  /** Header, timeout, connection and HTTP/2 limits (bootstrap `limits`), the same on every listener. */
  readonly limits: Limits
  /** Where listeners count the limits they enforce. */
  readonly limitStats: HttpLimitStats
  /** This thread's overload actions (bootstrap `overload`). */
  readonly overload: OverloadState
}

/**
 * The http layer sees a listener as an HttpListener and the tcp layer as a TcpListener (interfaces they
 * own); the listener layer keeps the rest (TLS termination, the HTTP/2 server) to itself.
 */
export class ListenerRuntime implements HttpListener, TcpListener {
  /** The filters that apply under the current model (see HttpFilter.appliesTo), recomputed on reload. */
  filters: readonly HttpFilter[]
  /** Every filter the runtime registered for this listener, in order. */
  readonly #allFilters: readonly HttpFilter[]
  readonly #state: ProxyState
  #model: ListenerModel
  #draining = false
  /** TLS termination (Sidecar ingress `tls`): follows the model; undefined while it has none. */
  #tls: TlsTerminator | undefined
  #http2: Http2Downstream | undefined
  /** The TLS terminator's handshakes, counted under this listener. */
  readonly #handshakes = {
    handshake: (): void => this.countLimit('ssl.handshake'),
    connectionError: (): void => this.countLimit('ssl.connection_error'),
  }
  /** Connections refused by PeerAuthentication, by reason (admin /listeners). */
  readonly mtlsRefusals: Partial<Record<MtlsRefusal, number>> = {}

  constructor(model: ListenerModel, filters: readonly HttpFilter[], state: ProxyState) {
    this.#model = model
    this.#allFilters = filters
    this.#state = state
    this.filters = this.#applicableFilters()
    if (model.tls !== undefined) this.#tls = new TlsTerminator(model.name, model.tls, this.#handshakes)
  }

  /** This listener's part of the current model (replaced on reload while the socket stays bound). */
  get model(): ListenerModel {
    return this.#model
  }

  set model(model: ListenerModel) {
    this.#model = model
    this.filters = this.#applicableFilters()
    if (model.tls === undefined) {
      this.#tls?.close()
      this.#tls = undefined
    } else if (this.#tls === undefined) this.#tls = new TlsTerminator(model.name, model.tls, this.#handshakes)
    else this.#tls.update(model.tls)
  }

  #applicableFilters(): readonly HttpFilter[] {
    const model = this.#state.model
    return this.#allFilters.filter((f) => f.appliesTo === undefined || f.appliesTo(this.#model, model))
  }

  /** The TLS termination of this listener's connections; throws when its model has no `tls`. */
  get tls(): TlsTerminator {
    if (this.#tls === undefined) throw new Error(`listener ${this.#model.name} does not terminate TLS`)
    return this.#tls
  }

  /** `https` when this listener terminates TLS (x-forwarded-proto, redirects). */
  get scheme(): string {
    return this.#model.tls === undefined ? 'http' : 'https'
  }

  /** Set when draining: responses carry `connection: close`. */
  get draining(): boolean {
    return this.#draining
  }

  set draining(draining: boolean) {
    this.#draining = draining
    // A draining listener serves out its drain period with the certificate it has: its files need no watching.
    if (draining) this.#tls?.close()
  }

  get closesConnections(): boolean {
    return this.#draining || this.#state.overload.disableHttpKeepalive
  }

  get overload(): OverloadState {
    return this.#state.overload
  }

  /** The HTTP/2 server for this listener's h2 connections, made when the first one arrives. */
  get http2(): Http2Downstream {
    this.#http2 ??= new Http2Downstream(this)
    return this.#http2
  }

  /** Active HTTP/2 sessions' GOAWAY on drain; undefined when no h2 connection ever came. */
  get http2IfStarted(): Http2Downstream | undefined {
    return this.#http2
  }

  get proxyModel(): Model {
    return this.#state.model
  }

  get clusters(): TcpListener['clusters'] {
    return this.#state.clusters
  }

  get tcpStats(): TcpListener['tcpStats'] {
    return this.#state.tcpStats
  }

  get observers(): TcpListener['observers'] {
    return this.#state.observers
  }

  get peerMetadata(): TcpListener['peerMetadata'] {
    return this.#state.peerMetadata
  }

  get mtls(): MtlsTerminator | undefined {
    return this.#state.mtls
  }

  get pathNormalizer(): PathNormalizer {
    return this.#state.pathNormalizer
  }

  get limits(): Limits {
    return this.#state.limits
  }

  countLimit(stat: HttpLimitStatName): void {
    this.#state.limitStats.count(this.#model.name, stat)
  }

  /** Counts a connection PeerAuthentication refused; the caller closes it. */
  countRefusal(reason: MtlsRefusal): void {
    this.mtlsRefusals[reason] = (this.mtlsRefusals[reason] ?? 0) + 1
  }
}
