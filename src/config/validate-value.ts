// Validates a plain config value with a zod schema: the typed output, errors, and warnings for unsupported fields.

import type { z } from 'zod'
import { describeIssue, type FieldProblem } from './issue-message.ts'
import { isWarningIssue, keptRest } from './istio/unsupported.ts'
import type { SpecPath } from './resource.ts'
import type { StringPool } from './string-pool.ts'

export interface Validated<T> {
  /** The schema's output; undefined when there are errors. */
  readonly value: T | undefined
  readonly problems: FieldProblem[]
}

/**
 * Validates `input` (found at `root` in its document). Map entries whose value is null count as absent, as
 * Kubernetes prunes them. When the only issues are warnings, the warned fields are dropped (or keep the
 * part that is supported, warnIgnoredPart) and the rest is validated again, so the output holds only what
 * we support. Strings come from `pool` when given.
 */
export function validateValue<T>(
  schema: z.ZodType<T>,
  input: unknown,
  root: SpecPath,
  pool?: StringPool,
): Validated<T> {
  const pruned = withoutNullEntries(input, pool)
  const first = schema.safeParse(pruned)
  if (first.success) return { value: first.data, problems: [] }

  const problems = first.error.issues.flatMap((issue) => describeIssue(issue, pruned, root))
  const warned = first.error.issues.filter(isWarningIssue)
  if (warned.length < first.error.issues.length) return { value: undefined, problems }

  const supported = structuredClone(pruned)
  for (const issue of warned) {
    const rest = keptRest(issue)
    if (rest === undefined) deletePath(supported, issue.path)
    else setPath(supported, issue.path, rest)
  }
  const second = schema.safeParse(supported)
  if (second.success) return { value: second.data, problems }
  const errors = second.error.issues.flatMap((issue) => describeIssue(issue, supported, root))
  return { value: undefined, problems: [...problems, ...errors] }
}

function withoutNullEntries(value: unknown, pool: StringPool | undefined): unknown {
  if (typeof value === 'string') return pool === undefined ? value : pool.intern(value)
  if (Array.isArray(value)) return value.map((item) => withoutNullEntries(item, pool))
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [key, entry] of Object.entries(value)) {
    if (entry === null) continue
    const cleaned = withoutNullEntries(entry, pool)
    // A `__proto__` key stays an own entry, as Object.fromEntries keeps it.
    if (key === '__proto__')
      Object.defineProperty(out, key, {
        value: cleaned,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    else out[pool === undefined ? key : pool.intern(key)] = cleaned
  }
  return out
}

function setPath(root: unknown, path: readonly PropertyKey[], value: unknown): void {
  let parent = root
  for (const segment of path.slice(0, -1)) {
    if (parent === null || typeof parent !== 'object') return
    parent = (parent as Record<PropertyKey, unknown>)[segment]
  }
  const last = path[path.length - 1]
  if (parent !== null && typeof parent === 'object' && last !== undefined) {
    ;(parent as Record<PropertyKey, unknown>)[last] = value
  }
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
