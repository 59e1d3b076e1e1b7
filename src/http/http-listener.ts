// What the HTTP connection manager reads of the listener it serves; the runtime implements it (src/listener/listener-runtime.ts).

import type { ListenerModel, Model } from '../config/model.ts'
import type { Limits } from '../protocol/limits.ts'
import type { OverloadState } from '../protocol/overload.ts'
import type { HttpLimitStatName } from '../telemetry/http-limit-stats.ts'
import type { TrafficObservers } from '../telemetry/traffic-observer.ts'
import type { HttpFilter } from './filter.ts'
import type { PathNormalizer } from './path-normalization.ts'

export interface HttpListener {
  /** This listener's part of the current model (a reload replaces it while the socket stays bound). */
  readonly model: ListenerModel
  /** The whole current model; a request keeps the one it started with (RequestContext.model). */
  readonly proxyModel: Model
  /** The listener's filters in order, registered by the runtime; the router is last. */
  readonly filters: readonly HttpFilter[]
  /** `https` when this listener terminates TLS (x-forwarded-proto, redirects). */
  readonly scheme: string
  /** Set while draining: responses carry `connection: close`, HTTP/2 sessions get GOAWAY (new ones after their first streams). */
  readonly draining: boolean
  /** Draining, or the overload manager disabled keep-alive: HTTP/1.1 responses carry `connection: close`. */
  readonly closesConnections: boolean
  /** This thread's overload actions (bootstrap `overload`), read as each request starts. */
  readonly overload: OverloadState
  /** Telemetry told of every request's end (metrics, access log); the proxy's one list. */
  readonly observers: TrafficObservers
  /** The path normalization every request gets before its filters (bootstrap `pathNormalization`). */
  readonly pathNormalizer: PathNormalizer
  /** The proxy's protective limits (bootstrap `limits`). */
  readonly limits: Limits
  /** Counts a limit this listener enforced (http.<prefix>.<stat>); limits are rare, this is off the hot path. */
  countLimit(stat: HttpLimitStatName): void
}
