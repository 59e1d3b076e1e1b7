// Admin /explain: `outrigger explain` on the running model, with endpoint health from the running clusters.

import type { ProxyRuntime } from '../proxy-runtime.ts'
import { explain, type LiveEndpoints } from './explain.ts'
import { ExplainQueryError, explainQueryFromParams } from './explain-query.ts'
import { formatExplanation } from './explain-text.ts'

export interface AdminPage {
  readonly status: number
  readonly body: string
  readonly type: string
}

/**
 * The endpoints of the running clusters, built on this worker if no request has used them yet (as /clusters
 * builds them): their ejection and request counts are in the shared counter table, so every worker's show.
 */
function liveEndpoints(proxy: ProxyRuntime): LiveEndpoints {
  return (name) =>
    proxy.clusters.get(name)?.endpoints.map((e) => ({
      address: e.hostPort,
      ejected: e.ejected,
      activeRequests: e.activeRequests,
      locality: e.locality,
      weight: e.weight,
      priority: e.priority,
    }))
}

/** GET /explain?authority=&path=&method=&header=name:value&source_principal=&port=&direction=[&format=json]. */
export function explainPage(proxy: ProxyRuntime, params: URLSearchParams, json: boolean): AdminPage {
  if (!proxy.hasModel) return { status: 503, body: 'no model loaded yet\n', type: 'text/plain' }
  try {
    const explanation = explain(proxy.model, explainQueryFromParams(params), liveEndpoints(proxy))
    return json
      ? { status: 200, body: `${JSON.stringify(explanation, null, 2)}\n`, type: 'application/json' }
      : { status: 200, body: formatExplanation(explanation), type: 'text/plain; charset=utf-8' }
  } catch (err) {
    if (!(err instanceof ExplainQueryError)) throw err
    return { status: 400, body: `${err.message}\n`, type: 'text/plain' }
  }
}
