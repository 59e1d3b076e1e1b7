// Admin GET /live/config: the config in force, its listeners and warnings, and the last rejected reload, for the dashboard.

import type { ConfigMessage } from '../config/messages.ts'
import type { ListenerServe, NodeIdentity } from '../config/model.ts'
import type { ConfigFailure, ProxyRuntime } from '../proxy-runtime.ts'
import type { TrafficDirection } from '../telemetry/request-record.ts'

/** A listener of the model in force and its socket's state on this worker. */
export interface LiveListener {
  readonly name: string
  readonly direction: TrafficDirection
  readonly address: string
  readonly port: number
  /** The declared protocol (uppercase), e.g. HTTP, TCP, HTTPS. */
  readonly protocol: string
  /** How a connection is served: http, tcp, tls (passthrough), detect (sniffed) or tls-terminate. */
  readonly serve: ListenerServe
  readonly bound: boolean
  /** Why the socket is not bound, when it is not. */
  readonly error: string | null
  /** Downstream connections open now (this worker's). */
  readonly connections: number
}

/** The model that serves traffic now. */
export interface ModelInForce {
  readonly version: number
  readonly compiledAt: string
  readonly node: NodeIdentity
  readonly files: readonly string[]
  /** Istio resources it was compiled from, by kind. */
  readonly resources: Readonly<Record<string, number>>
  readonly resourceCount: number
  readonly clusterCount: number
  readonly warnings: readonly ConfigMessage[]
}

/** GET /live/config (admin). */
export interface ConfigReport {
  /** ISO time of the report. */
  readonly at: string
  readonly ready: boolean
  /** Bootstrap `live.enabled`: whether /live/stat and /live/history answer (off, they answer 404). */
  readonly liveView: boolean
  /** Null before the first model is loaded. */
  readonly model: ModelInForce | null
  readonly listeners: readonly LiveListener[]
  readonly reloads: { readonly succeeded: number; readonly failed: number }
  /** Set while the latest reload is the rejected one: the files on disk are not what serves. */
  readonly lastError: ConfigFailure | null
  /** The last rejected reload, kept after a later good one. */
  readonly lastRejection: ConfigFailure | null
}

export function configReport(proxy: ProxyRuntime): ConfigReport {
  const resources = proxy.resourcesInForce
  return {
    at: new Date().toISOString(),
    ready: proxy.ready,
    liveView: proxy.live !== undefined,
    model: proxy.hasModel
      ? {
          version: proxy.model.version,
          compiledAt: proxy.model.compiledAt,
          node: proxy.model.node,
          files: proxy.model.files,
          resources,
          resourceCount: Object.values(resources).reduce((sum, n) => sum + n, 0),
          clusterCount: proxy.model.clusters.size,
          warnings: proxy.model.warnings,
        }
      : null,
    listeners: proxy.listeners.listeners.map((l) => ({
      name: l.model.name,
      direction: l.model.direction,
      address: l.model.address,
      port: l.model.port,
      protocol: l.model.protocol,
      serve: l.model.serve,
      bound: l.bound,
      error: l.error ?? null,
      connections: l.connections,
    })),
    reloads: proxy.reloadCounts,
    lastError: proxy.lastError ?? null,
    lastRejection: proxy.lastRejection ?? null,
  }
}
