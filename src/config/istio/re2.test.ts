// Regression tests for the RE2 checks on Istio regex fields: syntax, length and Envoy's program size limit.

import { RE2JS } from 're2js'
import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import { MAX_PROGRAM_SIZE, re2Problem } from './re2.ts'

/** Found while measuring route regexes for the fuzz targets: 900 characters, a program of 60002 instructions. */
const programBomb = '(?:.{999}){0,1}'.repeat(60)

describe('re2Problem', () => {
  it('accepts the classic backtracking bombs, which RE2 matches in linear time', () => {
    for (const pattern of ['(a+)+$', '(a|aa)+b', '(a*)*b', '^(\\w+\\s?)*$']) {
      expect(re2Problem(pattern)).toBeUndefined()
      const path = `/${'a'.repeat(50_000)}!`
      const started = performance.now()
      RE2JS.compile(pattern).testExact(path)
      expect(performance.now() - started).toBeLessThan(200)
    }
  })

  it('rejects lookaround and backreferences, which RE2 does not have', () => {
    expect(re2Problem('(?=a)')).toMatch(/invalid or unsupported Perl syntax/)
    expect(re2Problem('(a)\\1')).toMatch(/invalid escape sequence/)
  })

  it('rejects a program larger than Istio sets for Envoy (re2.max_program_size.error_level)', () => {
    expect(programBomb.length).toBeLessThan(1024)
    expect(RE2JS.compile(programBomb).programSize()).toBeGreaterThan(MAX_PROGRAM_SIZE)
    expect(re2Problem(programBomb)).toBe(
      'RE2 program size of 60002 > max program size of 32768 set for the error level threshold',
    )
    expect(re2Problem('(?:.{999}){0,1}'.repeat(16))).toBeUndefined()
  })

  it('reports the program size with the file and line of the VirtualService field', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - uri:
        regex: "${programBomb}"
    route:
    - destination: {host: reviews}
`
    const messages = parseResources(yaml, 'vs.yaml', 'default').messages.map(formatMessage)
    expect(messages).toEqual([
      "vs.yaml:10: field 'spec.http[0].match[0].uri.regex': RE2 program size of 60002 > max program size of 32768 set for the error level threshold",
    ])
  })
})
