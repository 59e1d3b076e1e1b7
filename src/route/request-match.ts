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
}
