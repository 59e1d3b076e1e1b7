// RE2 syntax check for the regex fields of Istio resources (Envoy's safe_regex), with Istio's wording.

import { RE2JS } from 're2js'

/** Istio's limit on a regex's length (it stands in for Envoy's program size limit). */
const MAX_REGEX_LENGTH = 1024

/** Why `pattern` is not a usable RE2 regex, or undefined when it is. */
export function re2Problem(pattern: string): string | undefined {
  if (pattern === '') return 'regex must not be empty'
  if (pattern.length > MAX_REGEX_LENGTH)
    return `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`
  try {
    RE2JS.compile(pattern)
    return undefined
  } catch (error) {
    return `${(error as Error).message}; Istio uses RE2 style regex (https://github.com/google/re2/wiki/Syntax)`
  }
}
