// The route cache of Envoy's connection manager: the virtual host and route a request matches on the listener's route table.

import type { RequestContext } from './request-context.ts'

/** Sets ctx.virtualHost and ctx.route; false when nothing matches (the router answers 404 NR). */
export function selectRoute(ctx: RequestContext): boolean {
  const vh = ctx.listenerModel.routeTable.lookup(ctx.authority)
  if (vh === undefined) return false
  ctx.virtualHost = vh
  for (const route of vh.routes) {
    if (route.matches(ctx)) {
      ctx.route = route
      return true
    }
  }
  return false
}
