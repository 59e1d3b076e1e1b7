// Regression tests for header operation values: what Envoy refuses (NUL, CR, LF) and what node cannot send are refused at validation, with file:line.

import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import { headerValueProblem } from './header-name.ts'

/** Found with the header-building fuzz target: a response header `x-a: "a\nb"` left every matching request without an answer, and on a directResponse route crashed the process. */
function load(headersYaml: string): string[] {
  const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - headers:
${headersYaml}
    route:
    - destination: {host: reviews}
`
  return parseResources(yaml, 'vs.yaml', 'default').messages.map(formatMessage)
}

describe('headerValueProblem', () => {
  it('refuses NUL, CR and LF as Envoy does, and the control characters node cannot write', () => {
    expect(headerValueProblem('a\nb')).toBe('header value must not contain NUL, CR or LF')
    expect(headerValueProblem('a\r')).toBe('header value must not contain NUL, CR or LF')
    expect(headerValueProblem('\u0000')).toBe('header value must not contain NUL, CR or LF')
    expect(headerValueProblem('a\u0001')).toBe(
      'header value must not contain control characters other than HTAB',
    )
    expect(headerValueProblem('\u007f')).toBe(
      'header value must not contain control characters other than HTAB',
    )
    expect(headerValueProblem('x'.repeat(16385))).toBe('header value must be at most 16384 bytes')
  })

  it('accepts HTAB, obs-text and text beyond latin1 (sent as UTF-8)', () => {
    for (const value of ['', 'a\tb', 'caf\u00e9', '\u4e2d\u6587', '%REQ(x)%'])
      expect(headerValueProblem(value)).toBeUndefined()
  })

  it('reports a bad value in a VirtualService header operation at its line', () => {
    expect(load('      response:\n        set: {x-a: "a\\nb"}')).toEqual([
      "vs.yaml:10: field 'spec.http[0].headers.response.set.x-a': header value must not contain NUL, CR or LF",
    ])
    expect(load('      request:\n        add:\n          x-b: "\\x01"')).toEqual([
      "vs.yaml:11: field 'spec.http[0].headers.request.add.x-b': header value must not contain control characters other than HTAB",
    ])
  })

  it('refuses a line break in a rewritten authority, as Envoy does for host_rewrite_literal', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - rewrite: {authority: "a\\r\\nx-smuggled: 1"}
    route:
    - destination: {host: reviews}
`
    expect(parseResources(yaml, 'vs.yaml', 'default').messages.map(formatMessage)).toEqual([
      "vs.yaml:8: field 'spec.http[0].rewrite.authority': header value must not contain NUL, CR or LF",
    ])
  })

  it('refuses a hop-by-hop request header edit, which the upstream client cannot send (found by the header-building fuzz target)', () => {
    // Shrunk counterexample: `request: {set: {connection: ""}}` made every request on the route a 503 UF.
    expect(load('      request:\n        set: {connection: ""}')).toEqual([
      "vs.yaml:10: field 'spec.http[0].headers.request.set.connection': header 'connection' is hop-by-hop: the proxy sets it for each upstream connection and cannot send a configured one",
    ])
    expect(load('      request:\n        add: {x-ok: "1"}\n        remove: [connection]')).toEqual([])
  })
})
