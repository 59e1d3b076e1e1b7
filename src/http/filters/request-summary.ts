// At log level debug, writes one line per finished request (status, flags, route, cluster, duration) to stderr.

import { getLogLevel, log } from '../../telemetry/log.ts'
import { formatResponseFlags } from '../../telemetry/response-flags.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'

export class RequestSummaryFilter implements HttpFilter {
  readonly name = 'request-summary'

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    // Costs nothing unless debug logging is on (`POST /logging?level=debug`).
    if (getLogLevel() === 'debug') new RequestSummary(ctx).watch()
    return 'continue'
  }
}

/** Waits for the response to close, then logs it. */
class RequestSummary {
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
