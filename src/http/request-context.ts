// Per-request state: references to the request, response and model, plus what the stages decided.

import type { Readable } from 'node:stream'
import type { ListenerModel, Model } from '../config/model.ts'
import { type ConnectionPeer, connectionPeer } from '../protocol/connection-peer.ts'
import { originalDestination } from '../protocol/original-destination.ts'
import type { PeerIdentity, RequestPrincipal } from '../protocol/peer-identity.ts'
import type { RequestFacts } from '../route/request-facts.ts'
import type { Route, WeightedDestination } from '../route/route.ts'
import type { VirtualHost } from '../route/route-table.ts'
import { clusterService } from '../telemetry/cluster-service.ts'
import type { RequestRecord } from '../telemetry/request-record.ts'
import type { ResponseFlag } from '../telemetry/response-flags.ts'
import type { DirectionTelemetry } from '../telemetry/telemetry-policy.ts'
import type { SampledTrace } from '../telemetry/trace-context.ts'
import type { WorkloadMetadata } from '../telemetry/workload-metadata.ts'
import type { DownstreamRequest, DownstreamResponse } from './downstream.ts'
import type { HttpFilter } from './filter.ts'
import type { HttpListener } from './http-listener.ts'

const noFlags: readonly ResponseFlag[] = Object.freeze([])

/** The router's work for a request, which the connection manager can stop (a stream deadline ran out). */
export interface UpstreamExchange {
  /** Stops the upstream side without answering or flagging anything: the caller answers. */
  cancel(): void
}

/** What http knows of the upstream host a request went to (the router sets an UpstreamEndpoint here). */
export interface UpstreamHost {
  /** `address:port`, as Envoy's %UPSTREAM_HOST% prints it. */
  readonly hostPort: string
  /** `region/zone/subzone`, or empty. */
  readonly locality: string
}

function notifyEnded(observers: HttpListener['observers'], record: RequestRecord): void {
  observers.requestEnded(record)
}

export class RequestContext implements RequestFacts, RequestRecord {
  readonly req: DownstreamRequest
  readonly res: DownstreamResponse
  /** The request body: the IncomingMessage itself, or the HTTP/2 stream. */
  readonly body: Readable
  readonly listener: HttpListener
  /** The model this request runs on from start to end, even if a reload swaps it meanwhile. */
  readonly model: Model
  /** This listener's part of `model`: its route table is the one the request is routed by. */
  readonly listenerModel: ListenerModel
  /** The listener's filter chain for `model`, kept for the whole request even if a reload changes it. */
  readonly filters: readonly HttpFilter[]
  readonly startTime: number
  /** Index of the next filter to run; a filter that stopped the chain resumes from here. */
  filterIndex = 0

  virtualHost: VirtualHost | undefined
  route: Route | undefined
  destination: WeightedDestination | undefined
  clusterName = ''
  upstream: UpstreamHost | undefined
  requestId = ''
  responseCodeDetails = ''
  /** Upstream attempts made (1 + retries); 0 when the request never reached a cluster. */
  attemptCount = 0
  /** Milliseconds from dispatch to upstream response headers. */
  upstreamServiceTime = -1
  /** A `set-cookie` the consistent-hash load balancer generated (httpCookie with a ttl), for the response. */
  hashCookie: string | undefined = undefined
  /** The router's upstream exchange while one is in flight. */
  upstreamExchange: UpstreamExchange | undefined = undefined
  /** The mTLS peer of the request's connection; undefined on plain text or TLS without a mesh identity. */
  peer: PeerIdentity | undefined = undefined
  /** Set by the JWT filter when a RequestAuthentication verified the request's token. */
  requestPrincipal: RequestPrincipal | undefined = undefined
  /** What the mTLS handshake of the request's connection established (XFCC); undefined on plain text. */
  readonly mtls: ConnectionPeer | undefined
  /** What to observe of this request (its model's telemetry for its direction). */
  readonly telemetry: DirectionTelemetry
  /** performance.now() when the request ended; -1 until then (set only while something observes). */
  endTime = -1
  /** The gRPC status of the response (header or trailer), once the router saw one. */
  grpcStatus: string | undefined = undefined
  /** Body bytes read from the downstream and written to it, counted by the router. */
  requestBodyBytes = 0
  responseBodyBytes = 0
  /** gRPC messages each way (length-prefixed frames), counted by the router on gRPC requests. */
  requestMessages = 0
  responseMessages = 0
  /** The downstream workload's peer metadata (inbound); set by the peer-metadata exchange. */
  downstreamPeerMetadata: WorkloadMetadata | undefined = undefined
  /** The upstream workload's peer metadata (outbound, from the response); set by the peer-metadata exchange. */
  upstreamPeerMetadata: WorkloadMetadata | undefined = undefined
  /** True when the last attempt's upstream connection was mTLS. */
  upstreamMtls = false
  /** The last attempt's upstream connection's local `address:port`, where the pool tells it (HTTP/1.1 via undici does not). */
  upstreamLocalAddress: string | undefined = undefined
  /** Set with a connect-failure local reply: the TLS handshake's failure, or ''. */
  upstreamTransportFailureReason = ''
  /** This request's span when it is sampled (set by the tracing filter); undefined when not traced. */
  trace: SampledTrace | undefined = undefined

  /** Made by the first setFlag: most requests end without a flag. */
  #responseFlags: ResponseFlag[] | undefined
  #path: string | undefined
  #query: URLSearchParams | undefined
  #authority: string | undefined

  constructor(
    req: DownstreamRequest,
    res: DownstreamResponse,
    body: Readable,
    listener: HttpListener,
    model: Model,
  ) {
    this.req = req
    this.res = res
    this.body = body
    this.listener = listener
    this.model = model
    // Taken in the same tick as `model`: a reload swaps both before any request runs again.
    this.listenerModel = listener.model
    this.filters = listener.filters
    this.startTime = performance.now()
    this.mtls = connectionPeer(req.socket)
    if (this.mtls !== undefined) this.peer = this.mtls.identity
    this.telemetry = model.telemetry[this.listenerModel.direction]
    // Registered first, so it runs before the router's and the filters' listeners. Left on the response
    // (`on`, not `once`: no wrapper to make, none to remove when it fires); the response emits 'close' once.
    if (listener.observers.active) res.on('close', this.#responseClosed)
  }

  /** The end of the request for its observers (a per-request arrow: `this` of an emitter's listener is the emitter). */
  readonly #responseClosed = (): void => {
    this.endTime = performance.now()
    const observers = this.listener.observers
    // A response that finished has its final flags now. One that did not (the client left, the
    // stream was reset) is told after the other 'close' listeners: the router's and the fault
    // filter's set DC in theirs, so that observers read the request's final flags and details.
    if (this.res.writableFinished) observers.requestEnded(this)
    else process.nextTick(notifyEnded, observers, this)
  }

  get direction(): RequestRecord['direction'] {
    return this.listenerModel.direction
  }

  get listenerName(): string {
    return this.listenerModel.name
  }

  /** The status sent downstream, or 0 when none was. */
  get responseStatus(): number {
    return this.res.headersSent ? this.res.statusCode : 0
  }

  get routeName(): string {
    return this.route?.name ?? ''
  }

  get routeStatName(): string {
    return this.route?.statName ?? ''
  }

  /** The service host of the chosen cluster (`outbound|port|subset|host`), or ''. */
  get destinationService(): string {
    return clusterService(this.clusterName)
  }

  get upstreamHostPort(): string | undefined {
    return this.upstream?.hostPort
  }

  get downstreamRemoteAddress(): string {
    const socket = this.req.socket
    return `${socket.remoteAddress}:${socket.remotePort}`
  }

  /** Envoy's %DOWNSTREAM_LOCAL_ADDRESS%: the original destination of a captured connection. */
  get downstreamLocalAddress(): string {
    const socket = this.req.socket
    const original = originalDestination(socket)
    if (original === undefined) return `${socket.localAddress}:${socket.localPort}`
    return `${original.address.includes(':') ? `[${original.address}]` : original.address}:${original.port}`
  }

  /** The SNI the client sent on a TLS connection (TLSSocket.servername), or undefined. */
  get requestedServerName(): string | undefined {
    const name = (this.req.socket as { servername?: unknown }).servername
    return typeof name === 'string' && name !== '' ? name : undefined
  }

  get protocol(): string {
    const req = this.req
    return req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/1.${req.httpVersionMinor ?? 1}`
  }

  get method(): string {
    return this.req.method ?? 'GET'
  }

  /** The request target as sent: path and query. */
  get url(): string {
    return this.req.url ?? '/'
  }

  /** Replaces the request target (path normalization): routing, policies and the upstream see the new one. */
  rewriteUrl(url: string): void {
    this.req.url = url
    this.#path = undefined
    this.#query = undefined
  }

  get path(): string {
    if (this.#path === undefined) {
      const url = this.url
      const q = url.indexOf('?')
      this.#path = q === -1 ? url : url.slice(0, q)
    }
    return this.#path
  }

  /**
   * The body as an upstream client should read it. undici destroys a body stream once it has sent it,
   * which for an HTTP/2 stream (one Duplex for request and response) would reset the response; so an
   * h2 body is handed over as an iterator that leaves the stream open.
   */
  upstreamBody(): Readable | AsyncIterable<Buffer> {
    return this.req.httpVersionMajor === 2 ? this.body.iterator({ destroyOnReturn: false }) : this.body
  }

  /** True when the downstream speaks HTTP/2 (gRPC clients always do). */
  get http2(): boolean {
    return this.req.httpVersionMajor === 2
  }

  /** `https` on a TLS connection (the listener's own TLS, or mTLS), as Envoy sets x-forwarded-proto from `connection.ssl()`. */
  get scheme(): string {
    return this.mtls === undefined ? this.listener.scheme : 'https'
  }

  get authority(): string {
    this.#authority ??= this.rawHeader('host') ?? ''
    return this.#authority
  }

  get port(): number {
    return this.virtualHost?.port ?? this.listenerModel.port
  }

  header(name: string): string | undefined {
    const value = this.req.headers[name]
    if (value === undefined) return undefined
    return Array.isArray(value) ? value.join(', ') : value
  }

  queryParam(name: string): string | undefined {
    if (this.#query === undefined) {
      const url = this.url
      const q = url.indexOf('?')
      this.#query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
    }
    return this.#query.get(name) ?? undefined
  }

  /** First value of a header by lowercase name, read from rawHeaders without building `req.headers`. */
  rawHeader(name: string): string | undefined {
    const raw = this.req.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const key = raw[i]
      if (key.length === name.length && key.toLowerCase() === name) return raw[i + 1]
    }
    return undefined
  }

  /** Envoy's response flags set so far, in the order they were set. */
  get responseFlags(): readonly ResponseFlag[] {
    return this.#responseFlags ?? noFlags
  }

  /**
   * The client left before the response ended. Envoy's connection manager says how: an HTTP/2 stream the
   * client reset is DR with the codec's `http2.remote_reset` (ActiveStream::onResetStream, RemoteReset),
   * a connection that closed is DC with `downstream_remote_disconnect`.
   */
  downstreamGone(): void {
    if (this.res.resetByClient === true) {
      this.setFlag('DR')
      this.responseCodeDetails = 'http2.remote_reset'
      return
    }
    this.setFlag('DC')
    this.responseCodeDetails = 'downstream_remote_disconnect'
  }

  setFlag(flag: ResponseFlag): void {
    if (this.#responseFlags === undefined) this.#responseFlags = [flag]
    else if (!this.#responseFlags.includes(flag)) this.#responseFlags.push(flag)
  }
}
