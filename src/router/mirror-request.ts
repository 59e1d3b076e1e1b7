// A fire-and-forget copy of a request to a shadow cluster (Envoy's request mirroring): the response is discarded.

import type { Dispatcher } from 'undici'
import type { RequestContext } from '../http/request-context.ts'
import { rollPercent } from '../route/fault-policy.ts'
import { type MirrorPolicy, shadowAuthority } from '../route/mirror-policy.ts'
import type { ClusterManager } from '../upstream/cluster-manager.ts'
import { UpstreamTimeoutError } from '../upstream/failure.ts'
import type { UpstreamEndpoint } from '../upstream/upstream-endpoint.ts'

/** The proxy's request mirroring: one per proxy, owned by the runtime, which aborts what is in flight at shutdown. */
export class Mirroring {
  readonly #clusters: ClusterManager
  /** Mirror copies in flight, so shutdown can abort them. */
  readonly #inFlight = new Set<MirrorRequest>()

  constructor(clusters: ClusterManager) {
    this.#clusters = clusters
  }

  /**
   * Sends copies of a request (bodiless, or with its body read whole) to the route's mirrors that its percentages draw. Never fails or
   * slows the primary: a missing cluster, no endpoint or a full circuit breaker just skips the copy.
   */
  send(
    ctx: RequestContext,
    mirrors: readonly MirrorPolicy[],
    method: string,
    path: string,
    headers: readonly string[],
    timeoutMs: number,
    body: Buffer | null = null,
  ): void {
    for (const mirror of mirrors) {
      if (!rollPercent(mirror.percent)) continue
      const cluster = this.#clusters.forModel(ctx.model, mirror.clusterName)
      const endpoint = cluster?.pick(ctx)
      if (cluster === undefined || endpoint === undefined || !cluster.admits(endpoint)) continue
      const copy = headers.slice()
      // buildUpstreamHeaders puts the authority first.
      copy[1] = shadowAuthority(copy[1])
      new MirrorRequest(endpoint, this.#inFlight).start(method, path, copy, timeoutMs, body, ctx.http2)
    }
  }

  /** Aborts every mirror copy still waiting for its shadow (at shutdown, before the pools close). */
  abortAll(): void {
    for (const mirror of this.#inFlight) mirror.abort()
  }
}

class MirrorRequest implements Dispatcher.DispatchHandler {
  readonly #endpoint: UpstreamEndpoint
  readonly #inFlight: Set<MirrorRequest>
  #controller: Dispatcher.DispatchController | undefined
  #timer: NodeJS.Timeout | undefined
  #done = false

  constructor(endpoint: UpstreamEndpoint, inFlight: Set<MirrorRequest>) {
    this.#endpoint = endpoint
    this.#inFlight = inFlight
  }

  start(
    method: string,
    path: string,
    headers: string[],
    timeoutMs: number,
    body: Buffer | null,
    downstreamHttp2: boolean,
  ): void {
    this.#endpoint.acquire()
    this.#inFlight.add(this)
    if (timeoutMs > 0) this.#timer = setTimeout(this.#onTimeout, timeoutMs)
    try {
      this.#endpoint.dispatch({ method, path, headers, body }, this, downstreamHttp2)
    } catch {
      this.#finish()
    }
  }

  readonly #onTimeout = (): void => {
    this.#timer = undefined
    this.abort()
  }

  abort(): void {
    if (this.#controller !== undefined) this.#controller.abort(new UpstreamTimeoutError())
    else this.#finish()
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#done) controller.abort(new UpstreamTimeoutError())
  }

  onResponseStart(): void {}

  onResponseData(): void {}

  onResponseEnd(): void {
    this.#finish()
  }

  onResponseError(): void {
    this.#finish()
  }

  #finish(): void {
    if (this.#done) return
    this.#done = true
    this.#inFlight.delete(this)
    this.#endpoint.release()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }
}
