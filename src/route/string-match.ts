// Istio's StringMatch (exact, prefix or RE2 regex) compiled once into a predicate.

import { compileRe2, type RE2JS } from '../protocol/re2.ts'

export interface StringMatchSpec {
  readonly exact?: string
  readonly prefix?: string
  readonly regex?: string
}

/** A compiled StringMatch; `test` runs on the request path, so it allocates nothing. */
export interface StringMatcher {
  readonly kind: 'exact' | 'prefix' | 'regex' | 'present'
  /** The literal for exact/prefix (lowercased when case is ignored), the pattern for regex. */
  readonly value: string
  test(input: string): boolean
}

class ExactMatcher implements StringMatcher {
  readonly kind = 'exact'
  readonly value: string
  readonly #ignoreCase: boolean

  constructor(value: string, ignoreCase: boolean) {
    this.#ignoreCase = ignoreCase
    this.value = ignoreCase ? value.toLowerCase() : value
  }

  test(input: string): boolean {
    return (this.#ignoreCase ? input.toLowerCase() : input) === this.value
  }
}

class PrefixMatcher implements StringMatcher {
  readonly kind = 'prefix'
  readonly value: string
  readonly #ignoreCase: boolean

  constructor(value: string, ignoreCase: boolean) {
    this.#ignoreCase = ignoreCase
    this.value = ignoreCase ? value.toLowerCase() : value
  }

  test(input: string): boolean {
    return (this.#ignoreCase ? input.toLowerCase() : input).startsWith(this.value)
  }
}

/** RE2 semantics (linear time, whole-input match) as Envoy's safe_regex. */
class RegexMatcher implements StringMatcher {
  readonly kind = 'regex'
  readonly value: string
  readonly #pattern: RE2JS

  constructor(pattern: string, ignoreCase: boolean) {
    this.value = pattern
    this.#pattern = compileRe2(pattern, { ignoreCase })
  }

  test(input: string): boolean {
    return this.#pattern.testExact(input)
  }
}

/** An empty StringMatch (`{}`): the value only has to be present. */
class PresentMatcher implements StringMatcher {
  readonly kind = 'present'
  readonly value = ''
  test(): boolean {
    return true
  }
}

/** Compiles a StringMatch; throws on an invalid RE2 pattern (config validation reports it first). */
export function compileStringMatch(spec: StringMatchSpec, ignoreCase = false): StringMatcher {
  if (spec.exact !== undefined) return new ExactMatcher(spec.exact, ignoreCase)
  if (spec.prefix !== undefined) return new PrefixMatcher(spec.prefix, ignoreCase)
  if (spec.regex !== undefined) return new RegexMatcher(spec.regex, ignoreCase)
  return new PresentMatcher()
}
