// One HTTPMatchRequest compiled into a matcher; its conditions are ANDed.

import type { RequestFacts } from './request-facts.ts'
import type { StringMatcher } from './string-match.ts'

export interface HeaderCondition {
  readonly name: string
  readonly matcher: StringMatcher
  /** From `withoutHeaders`: the request matches when this header does not. */
  readonly inverted: boolean
}

export interface QueryCondition {
  readonly name: string
  readonly matcher: StringMatcher
}

export interface RequestMatchParts {
  readonly uri?: StringMatcher
  readonly scheme?: StringMatcher
  readonly method?: StringMatcher
  readonly authority?: StringMatcher
  readonly port?: number
  readonly headers: readonly HeaderCondition[]
  readonly queryParams: readonly QueryCondition[]
}

/** The condition of a match block that a request failed, as `RequestMatch.firstMiss` reports it. */
export type MatchMiss =
  | {
      readonly condition: 'port'
      /** The port the match block asks for. */
      readonly port: number
      readonly actual: string
    }
  | {
      readonly condition:
        | 'method'
        | 'uri'
        | 'scheme'
        | 'authority'
        | 'header'
        | 'withoutHeader'
        | 'queryParam'
      /** The header or query parameter's name. */
      readonly name?: string
      /** The configured matcher. */
      readonly matcher: StringMatcher
      /** The request's value; undefined when the request has none. */
      readonly actual: string | undefined
    }

export class RequestMatch {
  readonly parts: RequestMatchParts

  constructor(parts: RequestMatchParts) {
    this.parts = parts
  }

  matches(req: RequestFacts): boolean {
    const p = this.parts
    if (p.port !== undefined && p.port !== req.port) return false
    if (p.method !== undefined && !p.method.test(req.method)) return false
    if (p.uri !== undefined && !p.uri.test(req.path)) return false
    if (p.scheme !== undefined && !p.scheme.test(req.scheme)) return false
    if (p.authority !== undefined && !p.authority.test(req.authority)) return false
    for (const h of p.headers) {
      const value = req.header(h.name)
      const found = value !== undefined && h.matcher.test(value)
      if (found === h.inverted) return false
    }
    for (const q of p.queryParams) {
      const value = req.queryParam(q.name)
      if (value === undefined || !q.matcher.test(value)) return false
    }
    return true
  }

  /**
   * Why `matches` is false: the first condition that failed, checked in the same order on the same
   * compiled matchers; undefined exactly when `matches(req)` is true (a property test holds the two together).
   * For `outrigger explain`, off the request path: it allocates.
   */
  firstMiss(req: RequestFacts): MatchMiss | undefined {
    const p = this.parts
    if (p.port !== undefined && p.port !== req.port)
      return { condition: 'port', port: p.port, actual: String(req.port) }
    if (p.method !== undefined && !p.method.test(req.method))
      return { condition: 'method', matcher: p.method, actual: req.method }
    if (p.uri !== undefined && !p.uri.test(req.path))
      return { condition: 'uri', matcher: p.uri, actual: req.path }
    if (p.scheme !== undefined && !p.scheme.test(req.scheme))
      return { condition: 'scheme', matcher: p.scheme, actual: req.scheme }
    if (p.authority !== undefined && !p.authority.test(req.authority))
      return { condition: 'authority', matcher: p.authority, actual: req.authority }
    for (const h of p.headers) {
      const value = req.header(h.name)
      const found = value !== undefined && h.matcher.test(value)
      if (found === h.inverted)
        return {
          condition: h.inverted ? 'withoutHeader' : 'header',
          name: h.name,
          matcher: h.matcher,
          actual: value,
        }
    }
    for (const q of p.queryParams) {
      const value = req.queryParam(q.name)
      if (value === undefined || !q.matcher.test(value))
        return { condition: 'queryParam', name: q.name, matcher: q.matcher, actual: value }
    }
    return undefined
  }
}
