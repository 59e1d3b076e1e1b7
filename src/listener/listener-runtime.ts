// A bound listener at run time: its current model, its filter chain and the shared upstream clusters.

import type { ListenerModel, Model } from '../config/model.ts'
import type { HttpFilter } from '../http/filter.ts'
import { Http2Downstream } from '../http/http2-server.ts'
import type { ClusterManager } from '../upstream/cluster-manager.ts'

/** What every listener reads from the running proxy. */
export interface ProxyState {
  /** The current model; a reload replaces it atomically. */
  readonly model: Model
  readonly clusters: ClusterManager
}

export class ListenerRuntime {
  /** This listener's part of the current model (replaced on reload while the socket stays bound). */
  model: ListenerModel
  readonly filters: readonly HttpFilter[]
  readonly scheme = 'http'
  /** Set when draining: responses carry `connection: close`. */
  draining = false
  readonly #state: ProxyState
  #http2: Http2Downstream | undefined

  constructor(model: ListenerModel, filters: readonly HttpFilter[], state: ProxyState) {
    this.model = model
    this.filters = filters
    this.#state = state
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

  get clusters(): ClusterManager {
    return this.#state.clusters
  }
}
