// RE2 syntax check for the regex fields of Istio resources (Envoy's safe_regex), with Istio's wording.

import { RE2JS } from 're2js'

/** Istio's limit on a regex's length (it stands in for Envoy's program size limit). */
const MAX_REGEX_LENGTH = 1024

/**
 * Istio's bootstrap runtime `re2.max_program_size.error_level` (pilot-agent's extractRuntimeFlags): Envoy
 * rejects a regex whose compiled program is larger (source/common/common/regex.cc). Matching costs time
 * in proportion to program size × input length, so without it a 1 KiB pattern such as
 * `(?:.{999}){0,1}` repeated 60 times costs ~150 ms per 8 KiB path on the data path.
 */
export const MAX_PROGRAM_SIZE = 32768

/** Why `pattern` is not a usable RE2 regex, or undefined when it is. */
export function re2Problem(pattern: string): string | undefined {
  if (pattern === '') return 'regex must not be empty'
  if (pattern.length > MAX_REGEX_LENGTH)
    return `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`
  let compiled: RE2JS
  try {
    compiled = RE2JS.compile(pattern)
  } catch (error) {
    return `${(error as Error).message}; Istio uses RE2 style regex (https://github.com/google/re2/wiki/Syntax)`
  }
  const size = compiled.programSize()
  if (size > MAX_PROGRAM_SIZE)
    return `RE2 program size of ${size} > max program size of ${MAX_PROGRAM_SIZE} set for the error level threshold`
  return undefined
}
