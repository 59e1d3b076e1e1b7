// A route's compiled CORS policy: which origins may call it, and the header values answered to them.

import type { StringMatcher } from './string-match.ts'

export interface CorsPolicy {
  readonly origins: readonly StringMatcher[]
  /** Header values, joined at compile time; undefined when not configured. */
  readonly allowMethods: string | undefined
  readonly allowHeaders: string | undefined
  readonly exposeHeaders: string | undefined
  /** Seconds, as Access-Control-Max-Age wants them. */
  readonly maxAge: string | undefined
  readonly allowCredentials: boolean
  /** Envoy's forward_not_matching_preflights: a preflight from an unknown origin goes upstream. */
  readonly forwardUnmatchedPreflights: boolean
}

/** Envoy's origin check: any configured matcher, and an exact `*` allows every origin. */
export function originAllowed(policy: CorsPolicy, origin: string): boolean {
  for (const m of policy.origins) {
    if ((m.kind === 'exact' && m.value === '*') || m.test(origin)) return true
  }
  return false
}
