// Picks the virtual host and route early (Envoy's route cache), so filters before the router can read ctx.route.

import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'
import { selectRoute } from '../route-selection.ts'

/**
 * Never answers: as in Envoy, a request without a route still passes the filters before the router
 * (a rate limit or an authorization policy answers it first), and the router replies 404 NR.
 */
export class RouteSelectFilter implements HttpFilter {
  readonly name = 'route-select'

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    selectRoute(ctx)
    return 'continue'
  }
}
