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

/**
 * Adds a warning for the value being refined, or for `path` below it: by default "not supported yet and
 * is ignored"; `reason` words another reason the field is ignored. The warned field is dropped.
 */
export function warnUnsupported(
  ctx: RefinementCtx<unknown>,
  path: (string | number)[] = [],
  reason = UNSUPPORTED_REASON,
): void {
  const params = reason === UNSUPPORTED_REASON ? WARNING_PARAMS : { ...WARNING_PARAMS, reason }
  ctx.addIssue({ code: 'custom', message: reason, params, path })
}

/**
 * Warns that part of a value is ignored while the field stays: once the warning is reported, the field
 * is validated again holding `rest` (the value without the ignored part) instead of being dropped.
 */
export function warnIgnoredPart(ctx: RefinementCtx<unknown>, reason: string, rest: unknown): void {
  ctx.addIssue({ code: 'custom', message: reason, params: { ...WARNING_PARAMS, reason, rest }, path: [] })
}

/** The value a warned field keeps (warnIgnoredPart), or undefined when the warned field is dropped. */
export function keptRest(issue: z.core.$ZodIssue): unknown {
  return issue.code === 'custom' ? issue.params?.rest : undefined
}

export function isWarningIssue(issue: z.core.$ZodIssue): boolean {
  return issue.code === 'custom' && issue.params?.warning === true
}

/** The words after `field '<path>'` in a warning issue's message. */
export function warningReason(issue: z.core.$ZodIssue): string {
  const reason = issue.code === 'custom' ? issue.params?.reason : undefined
  return typeof reason === 'string' ? reason : UNSUPPORTED_REASON
}
