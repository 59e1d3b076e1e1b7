import { describe, expect, it } from 'vitest'
import { formatFieldPath } from './field-path.ts'

describe('formatFieldPath', () => {
  it('writes keys with dots and list indexes in brackets', () => {
    expect(formatFieldPath(['spec', 'http', 0, 'match', 1, 'uri'])).toBe('spec.http[0].match[1].uri')
  })

  it('quotes keys that are not plain names', () => {
    expect(formatFieldPath(['headers', 'x-user', '@claims.group'])).toBe('headers.x-user["@claims.group"]')
  })

  it('writes an empty path as an empty string', () => {
    expect(formatFieldPath([])).toBe('')
  })
})
