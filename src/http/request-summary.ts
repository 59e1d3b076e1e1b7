// At log level debug, writes one line per finished request (status, flags, route, cluster, duration) to stderr.

import { log } from '../telemetry/log.ts'
import { formatResponseFlags } from '../telemetry/response-flags.ts'
import type { RequestContext } from './request-context.ts'

/**
 * Waits for the response to close, then logs it. The connection manager (request-start.ts) makes one
 * per request only while the level is debug (`POST /logging?level=debug`), as Envoy's access log is the
 * connection manager's and not a filter: with debug off a request pays one level check, not a filter call.
 */
export class RequestSummary {
  readonly #ctx: RequestContext

  constructor(ctx: RequestContext) {
    this.#ctx = ctx
  }

  watch(): void {
    this.#ctx.res.once('close', this.#onClose)
  }

  readonly #onClose = (): void => {
    const ctx = this.#ctx
    const ms = Math.round(performance.now() - ctx.startTime)
    log.debug(
      `request ${ctx.method} ${ctx.authority}${ctx.url} ${ctx.res.statusCode} ` +
        `flags=${formatResponseFlags(ctx.responseFlags)} details=${ctx.responseCodeDetails || '-'} ` +
        `route=${ctx.route?.name || '-'} cluster=${ctx.clusterName || '-'} ` +
        `attempts=${ctx.attemptCount} duration=${ms}ms`,
    )
  }
}
