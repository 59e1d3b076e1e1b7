// Zod issues worded for users: which field is wrong and why, and the document path each message points at.

import type { z } from 'zod'
import { formatFieldPath } from './field-path.ts'
import { isWarningIssue, warningReason } from './istio/unsupported.ts'
import type { Severity } from './messages.ts'
import type { SpecPath } from './resource.ts'

/** One problem with one field; `path` runs from the document root (e.g. `['spec', 'http', 0]`). */
export interface FieldProblem {
  readonly severity: Severity
  readonly path: SpecPath
  readonly message: string
}

const EXPECTED_NAMES: Readonly<Record<string, string>> = {
  object: 'a map',
  record: 'a map',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean (true or false)',
}

/**
 * Describes `issue`, raised while validating `input` (the value found at `root` in the document).
 * An unknown-keys issue becomes one problem per key, each pointing at its key.
 */
export function describeIssue(issue: z.core.$ZodIssue, input: unknown, root: SpecPath): FieldProblem[] {
  const issuePath = issue.path.filter((segment) => typeof segment !== 'symbol')
  const path = [...root, ...issuePath]
  const field = formatFieldPath(path)
  const about = field === '' ? '' : `field '${field}': `

  if (isWarningIssue(issue)) {
    return [{ severity: 'warning', path, message: `field '${field}' ${warningReason(issue)}` }]
  }
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const keyPath = [...path, key]
        return { severity: 'error', path: keyPath, message: `unknown field '${formatFieldPath(keyPath)}'` }
      })
    case 'invalid_type': {
      const value = valueAt(input, issuePath)
      if (value === undefined) return [error(path, `missing required field '${field}'`)]
      const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected
      return [error(path, `${about}expected ${expected}, got ${describeValue(value)}`)]
    }
    case 'invalid_value': {
      const value = valueAt(input, issuePath)
      const expected = issue.values.map((allowed) => String(allowed)).join(', ')
      return [error(path, `${about}invalid value ${JSON.stringify(value)}, expected one of ${expected}`)]
    }
    default:
      return [error(path, `${about}${issue.message}`)]
  }
}

function error(path: SpecPath, message: string): FieldProblem {
  return { severity: 'error', path, message }
}

function valueAt(input: unknown, path: SpecPath): unknown {
  let value = input
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string | number, unknown>)[segment]
  }
  return value
}

function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a map'
  return `${typeof value} ${JSON.stringify(value)}`
}
