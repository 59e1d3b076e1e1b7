// re2js (RE2 semantics, as Envoy's safe_regex), required the first time a pattern compiles: a configuration without a regex never loads its ~1 MiB.

import { createRequire } from 'node:module'
import type * as Re2js from 're2js'

export type RE2JS = Re2js.RE2JS

let re2js: typeof Re2js.RE2JS | undefined

/** The RE2JS class, required on first use (compiling a model is synchronous, so no dynamic import). */
function re2(): typeof Re2js.RE2JS {
  re2js ??= (createRequire(import.meta.url)('re2js') as typeof Re2js).RE2JS
  return re2js
}

/** `pattern` compiled with RE2's syntax and linear-time matching; throws re2js's error when it does not compile. */
export function compileRe2(pattern: string, options: { ignoreCase?: boolean } = {}): RE2JS {
  const RE2 = re2()
  return RE2.compile(pattern, options.ignoreCase === true ? RE2.CASE_INSENSITIVE : 0)
}
