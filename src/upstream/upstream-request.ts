// Sends one request to an upstream endpoint with undici's dispatch and streams the response downstream.

import type { Dispatcher } from 'undici'
import { buildDownstreamHeaders } from '../http/downstream-headers.ts'
import { runResponseHeaders } from '../http/filter-chain.ts'
import type { RequestContext } from '../http/request-context.ts'
import { sendLocalReply } from '../http/respond.ts'
import { classifyUpstreamError, DownstreamClosedError, UpstreamTimeoutError } from './failure.ts'
import type { UpstreamEndpoint } from './upstream-endpoint.ts'

export interface UpstreamRequestSpec {
  readonly method: string
  readonly path: string
  readonly headers: string[]
  readonly hasBody: boolean
  readonly timeoutMs: number
}

/** The undici handler for one proxied request; one object per request, no closures on the data path. */
export class UpstreamRequest implements Dispatcher.DispatchHandler {
  readonly #ctx: RequestContext
  readonly #endpoint: UpstreamEndpoint
  readonly #dispatchedAt: number
  #controller: Dispatcher.DispatchController | undefined
  #timer: NodeJS.Timeout | undefined
  #done = false

  constructor(ctx: RequestContext, endpoint: UpstreamEndpoint) {
    this.#ctx = ctx
    this.#endpoint = endpoint
    this.#dispatchedAt = performance.now()
  }

  /** Dispatches the request; the response (or a local reply) reaches the downstream asynchronously. */
  start(spec: UpstreamRequestSpec): void {
    const ctx = this.#ctx
    this.#endpoint.acquire()
    ctx.upstream = this.#endpoint
    ctx.res.on('close', this.#onDownstreamClose)
    if (spec.timeoutMs > 0) this.#armTimeout(spec.timeoutMs, spec.hasBody)
    try {
      this.#endpoint.pool.dispatch(
        {
          method: spec.method,
          path: spec.path,
          headers: spec.headers,
          body: spec.hasBody ? ctx.req : null,
        },
        this,
      )
    } catch (err) {
      this.onResponseError(undefined, err as Error)
    }
  }

  /** Envoy starts the route timeout once the downstream request is complete. */
  #armTimeout(timeoutMs: number, hasBody: boolean): void {
    const arm = (): void => {
      if (!this.#done) this.#timer = setTimeout(this.#onTimeout, timeoutMs)
    }
    if (!hasBody || this.#ctx.req.complete) arm()
    else this.#ctx.req.once('end', arm)
  }

  readonly #onTimeout = (): void => {
    this.#timer = undefined
    const err = new UpstreamTimeoutError()
    if (this.#controller !== undefined) this.#controller.abort(err)
    else this.onResponseError(undefined, err)
  }

  readonly #onDownstreamClose = (): void => {
    if (this.#done) return
    // The client went away before the response ended: stop the upstream exchange too.
    this.#ctx.setFlag('DC')
    if (this.#controller !== undefined) this.#controller.abort(new DownstreamClosedError())
    else this.#finish()
  }

  readonly #onDownstreamDrain = (): void => {
    this.#controller?.resume()
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    // Answered already (route timeout, client gone) while waiting for a connection: don't send it.
    if (this.#done) controller.abort(new DownstreamClosedError())
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    const ctx = this.#ctx
    this.#endpoint.reportStatus(statusCode)
    ctx.upstreamServiceTime = Math.round(performance.now() - this.#dispatchedAt)
    ctx.responseCodeDetails = 'via_upstream'
    const headers = buildDownstreamHeaders(ctx, controller.rawHeaders as Buffer[])
    if (ctx.listener.draining) headers.push('connection', 'close')
    runResponseHeaders(ctx, statusCode, headers)
    ctx.res.writeHead(statusCode, headers)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#ctx.res.write(chunk)) {
      controller.pause()
      this.#ctx.res.once('drain', this.#onDownstreamDrain)
    }
  }

  onResponseEnd(): void {
    this.#finish()
    this.#ctx.res.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    const sent = this.#controller !== undefined
    this.#finish()
    if (err instanceof DownstreamClosedError) return
    const kind = classifyUpstreamError(err, sent)
    // Outlier detection (and cx_connect_fail) hear of failures before a response; a route timeout
    // while still waiting for a connection is not the endpoint's fault (Envoy: no host yet).
    if (!this.#ctx.res.headersSent && (sent || kind !== 'timeout')) this.#endpoint.reportFailure(kind)
    if (this.#ctx.res.headersSent) {
      // Too late for a local reply: reset the downstream as Envoy resets the stream.
      this.#ctx.setFlag(kind === 'timeout' ? 'UT' : kind === 'remoteReset' ? 'UR' : 'UC')
      this.#ctx.res.destroy()
      return
    }
    sendLocalReply(this.#ctx, kind)
  }

  #finish(): void {
    if (this.#done) return
    this.#done = true
    this.#endpoint.release()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#ctx.res.off('close', this.#onDownstreamClose)
  }
}
