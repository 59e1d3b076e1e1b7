// Reports a validation error from inside a zod refinement, at the refined value or at `path` below it.

import type { RefinementCtx } from 'zod'

export function addError(ctx: RefinementCtx<unknown>, message: string, path: (string | number)[] = []): void {
  ctx.addIssue({ code: 'custom', message, path })
}
