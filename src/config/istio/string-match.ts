// Istio's StringMatch (exactly one of exact, prefix, regex) and the maps of them used to match headers and queries.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { headerMatchNameProblem, isJwtClaimMatch } from './header-name.ts'
import { re2Problem } from './re2.ts'
import { warnUnsupported } from './unsupported.ts'

const MATCH_TYPES = ['exact', 'prefix', 'regex'] as const

interface StringMatchRules {
  /** `{}` is allowed and means "present" (header matches). */
  readonly emptyMeansPresent?: boolean
  /** `prefix: ""` is allowed (URI matches, as in Envoy). */
  readonly emptyPrefixAllowed?: boolean
}

function stringMatch(rules: StringMatchRules) {
  return z
    .strictObject({
      exact: z.string().optional(),
      prefix: z.string().optional(),
      regex: z.string().optional(),
    })
    .superRefine((match, ctx) => {
      const present = MATCH_TYPES.filter((type) => match[type] !== undefined)
      if (present.length > 1) {
        addError(
          ctx,
          `string match may set only one of exact, prefix or regex (found ${present.join(' and ')})`,
        )
      } else if (present.length === 0 && !rules.emptyMeansPresent) {
        addError(ctx, 'string match must set one of exact, prefix or regex')
      }
      if (match.prefix === '' && !rules.emptyPrefixAllowed) {
        addError(ctx, 'prefix string match should not be empty', ['prefix'])
      }
      if (match.regex !== undefined) {
        const problem = re2Problem(match.regex)
        if (problem !== undefined) addError(ctx, problem, ['regex'])
      }
    })
}

/** A StringMatch for scheme, method, authority and query parameters. */
export const stringMatchSchema = stringMatch({})

/** A StringMatch for the URI, where an empty prefix matches every path. */
export const uriMatchSchema = stringMatch({ emptyPrefixAllowed: true })

export type StringMatch = z.infer<typeof stringMatchSchema>

/** Header name → StringMatch; `{}` checks presence. JWT claim names (`@request.auth.claims.*`) are not supported yet. */
export const headerMatchMapSchema = z
  .record(z.string(), stringMatch({ emptyMeansPresent: true }))
  .superRefine((headers, ctx) => {
    for (const name of Object.keys(headers)) {
      if (isJwtClaimMatch(name)) {
        warnUnsupported(ctx, [name])
        continue
      }
      const problem = headerMatchNameProblem(name)
      if (problem !== undefined) addError(ctx, problem, [name])
    }
  })

/** Query parameter name → StringMatch. */
export const queryParamMatchMapSchema = z.record(z.string(), stringMatchSchema)
