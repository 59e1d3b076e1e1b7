// Validates a plain config value with a zod schema: the typed output, errors, and warnings for unsupported fields.

import type { z } from 'zod'
import { describeIssue, type FieldProblem } from './issue-message.ts'
import { isWarningIssue } from './istio/unsupported.ts'
import type { SpecPath } from './resource.ts'

export interface Validated<T> {
  /** The schema's output; undefined when there are errors. */
  readonly value: T | undefined
  readonly problems: FieldProblem[]
}

/**
 * Validates `input` (found at `root` in its document). Map entries whose value is null count as absent, as
 * Kubernetes prunes them. When the only issues are warnings, the warned fields are dropped and the rest is
 * validated again, so the output holds only what we support.
 */
export function validateValue<T>(schema: z.ZodType<T>, input: unknown, root: SpecPath): Validated<T> {
  const pruned = withoutNullEntries(input)
  const first = schema.safeParse(pruned)
  if (first.success) return { value: first.data, problems: [] }

  const problems = first.error.issues.flatMap((issue) => describeIssue(issue, pruned, root))
  const warned = first.error.issues.filter(isWarningIssue)
  if (warned.length < first.error.issues.length) return { value: undefined, problems }

  const supported = structuredClone(pruned)
  for (const issue of warned) deletePath(supported, issue.path)
  const second = schema.safeParse(supported)
  if (second.success) return { value: second.data, problems }
  const errors = second.error.issues.flatMap((issue) => describeIssue(issue, supported, root))
  return { value: undefined, problems: [...problems, ...errors] }
}

function withoutNullEntries(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNullEntries)
  if (value === null || typeof value !== 'object') return value
  const entries = Object.entries(value).filter(([, entry]) => entry !== null)
  return Object.fromEntries(entries.map(([key, entry]) => [key, withoutNullEntries(entry)]))
}

function deletePath(root: unknown, path: readonly PropertyKey[]): void {
  let parent = root
  for (const segment of path.slice(0, -1)) {
    if (parent === null || typeof parent !== 'object') return
    parent = (parent as Record<PropertyKey, unknown>)[segment]
  }
  const last = path[path.length - 1]
  if (parent !== null && typeof parent === 'object' && !Array.isArray(parent) && last !== undefined) {
    delete (parent as Record<PropertyKey, unknown>)[last]
  }
}
