// Picks the virtual host and route early (Envoy's route cache), so filters before the router can read ctx.route.

import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'
import { sendLocalReply } from '../respond.ts'

/** Sets ctx.virtualHost and ctx.route; answers 404 NR and returns false when nothing matches. */
export function selectRoute(ctx: RequestContext): boolean {
  const vh = ctx.listener.model.routeTable.lookup(ctx.authority)
  if (vh === undefined) {
    sendLocalReply(ctx, 'noRoute')
    return false
  }
  ctx.virtualHost = vh
  for (const route of vh.routes) {
    if (route.matches(ctx)) {
      ctx.route = route
      return true
    }
  }
  sendLocalReply(ctx, 'noRoute')
  return false
}

export class RouteSelectFilter implements HttpFilter {
  readonly name = 'route-select'

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    return selectRoute(ctx) ? 'continue' : 'stop'
  }
}
