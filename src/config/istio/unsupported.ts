// Schema for an Istio field we accept but do not implement yet: it parses anything and leaves a warning naming it.

import { type RefinementCtx, z } from 'zod'

export const UNSUPPORTED_REASON = 'is not supported yet and is ignored'

/** Issue params that mark a zod issue as a warning rather than an error. */
export const WARNING_PARAMS = { warning: true } as const

/** Accepts any value; a present value yields a warning, and the validated output never carries it. */
export function unsupported() {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      if (value !== undefined) warnUnsupported(ctx)
    })
    .transform((): undefined => undefined)
    .optional()
}

/** Adds the "not supported yet" warning for the value being refined, or for `path` below it. */
export function warnUnsupported(ctx: RefinementCtx<unknown>, path: (string | number)[] = []): void {
  ctx.addIssue({ code: 'custom', message: UNSUPPORTED_REASON, params: WARNING_PARAMS, path })
}

export function isWarningIssue(issue: z.core.$ZodIssue): boolean {
  return issue.code === 'custom' && issue.params?.warning === true
}
