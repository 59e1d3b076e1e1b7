// Why a request takes the route it takes: the virtual host and route the real matchers pick, with each earlier route's first failed condition.

import type { RequestFacts } from './request-facts.ts'
import type { MatchMiss } from './request-match.ts'
import type { Route } from './route.ts'
import type { RouteTable, VirtualHostChoice } from './route-table.ts'
import type { StringMatcher } from './string-match.ts'

/** A request as `outrigger explain` describes it: plain values instead of a live request. */
export interface ExplainedRequest {
  readonly method: string
  /** The path, with or without a query string (the query feeds `queryParams`). */
  readonly path: string
  readonly scheme: string
  readonly authority: string
  /** Lowercase name → value; repeated headers already joined with `, `. */
  readonly headers: ReadonlyMap<string, string>
}

/** RequestFacts over an ExplainedRequest; `port` is the chosen virtual host's, as RequestContext.port is. */
class ExplainedFacts implements RequestFacts {
  readonly method: string
  readonly path: string
  readonly scheme: string
  readonly authority: string
  readonly port: number
  readonly #headers: ReadonlyMap<string, string>
  readonly #query: URLSearchParams

  constructor(request: ExplainedRequest, port: number) {
    const q = request.path.indexOf('?')
    this.method = request.method
    this.path = q === -1 ? request.path : request.path.slice(0, q)
    this.scheme = request.scheme
    this.authority = request.authority
    this.port = port
    this.#headers = request.headers
    this.#query = new URLSearchParams(q === -1 ? '' : request.path.slice(q + 1))
  }

  header(name: string): string | undefined {
    return this.#headers.get(name)
  }

  queryParam(name: string): string | undefined {
    return this.#query.get(name) ?? undefined
  }
}

/** One route the request was tried against, in table order, up to and including the one that matched. */
export interface RouteVerdict {
  readonly route: Route
  /** Its position in the virtual host's compiled routes. */
  readonly index: number
  /** The first condition that failed; undefined: this route matched. */
  readonly miss: MatchMiss | undefined
}

export interface RoutingExplanation {
  /** The virtual host the authority selects and why; undefined: none (the router answers 404 NR). */
  readonly choice: VirtualHostChoice | undefined
  readonly verdicts: readonly RouteVerdict[]
  /** The route the router takes (the last verdict's, when it matched); undefined: 404 NR. */
  readonly matched: Route | undefined
}

/**
 * The route selection of http/route-selection.ts (`lookup`, then the first route whose `matches` is true),
 * explained through the same tables and compiled matchers: `explainLookup` and `firstMiss` stand beside
 * `lookup` and `matches`, and test/fuzz/route-explain.fuzz.test.ts checks that they agree.
 */
export function explainRouting(table: RouteTable, request: ExplainedRequest): RoutingExplanation {
  const choice = table.explainLookup(request.authority)
  if (choice === undefined) return { choice, verdicts: [], matched: undefined }
  const facts = new ExplainedFacts(request, choice.virtualHost.port)
  const verdicts: RouteVerdict[] = []
  const routes = choice.virtualHost.routes
  for (let index = 0; index < routes.length; index++) {
    const route = routes[index]
    const miss = route.match?.firstMiss(facts)
    verdicts.push({ route, index, miss })
    if (miss === undefined) return { choice, verdicts, matched: route }
  }
  return { choice, verdicts, matched: undefined }
}

/** A compiled StringMatch as text: `exact "jason"`, `prefix "/v2"`, `regex "/items/[0-9]+"`, `present`. */
export function describeMatcher(matcher: StringMatcher): string {
  return matcher.kind === 'present' ? 'present' : `${matcher.kind} ${JSON.stringify(matcher.value)}`
}

/** A failed condition as one line: `header end-user exact "jason" ≠ absent`, `uri prefix "/v2" ≠ "/api/v1"`. */
export function describeMiss(miss: MatchMiss): string {
  const actual = miss.actual === undefined ? 'absent' : JSON.stringify(miss.actual)
  switch (miss.condition) {
    case 'port':
      return `port ${miss.port} ≠ ${miss.actual}`
    case 'header':
    case 'queryParam':
      return `${miss.condition} ${miss.name} ${describeMatcher(miss.matcher)} ≠ ${actual}`
    case 'withoutHeader':
      return `withoutHeaders ${miss.name} ${describeMatcher(miss.matcher)} matches ${actual}`
    default:
      return `${miss.condition} ${describeMatcher(miss.matcher)} ≠ ${actual}`
  }
}
