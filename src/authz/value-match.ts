// Istio's value forms compiled once at config load: exact, `prefix*`, `*suffix`, `*`, path templates and IP blocks.

import { BlockList, isIP } from 'node:net'

/** A test of one string, built when config is compiled (no parsing or regex building per request). */
export type StringTest = (value: string) => boolean

/**
 * Istio's StringMatcher (pilot/pkg/security/authz/matcher/string.go StringMatcherWithPrefix): `*` is the
 * regex `.+` (any non-empty value), `*x` a suffix, `x*` a prefix, anything else exact.
 */
export function stringTest(pattern: string, ignoreCase = false): StringTest {
  if (ignoreCase) {
    const test = stringTest(pattern.toLowerCase())
    return (v) => test(v.toLowerCase())
  }
  if (pattern === '*') return (v) => v.length > 0
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1)
    return (v) => v.endsWith(suffix)
  }
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1)
    return (v) => v.startsWith(prefix)
  }
  return (v) => v === pattern
}

/** True when one of `tests` accepts `value`. */
export function anyTest(tests: readonly StringTest[]): StringTest {
  if (tests.length === 1) return tests[0]
  return (value) => {
    for (const test of tests) if (test(value)) return true
    return false
  }
}

/**
 * A path value: Istio's path template (`{*}` one segment, `{**}` the rest, security.ContainsPathTemplate and
 * matcher.PathTemplateMatcher) compiled to one RegExp here, else the string forms above.
 */
export function pathTest(pattern: string): StringTest {
  if (!pattern.includes('{')) return stringTest(pattern)
  const source = pattern
    .split('/')
    .map((segment) => {
      if (segment === '{*}') return '[^/]+'
      if (segment === '{**}') return '.*'
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    })
    .join('/')
  const regex = new RegExp(`^${source}$`)
  return (v) => regex.test(v)
}

/** IP addresses and CIDR blocks as one node:net BlockList (linear in blocks, no string parsing per check). */
export function ipBlocksTest(blocks: readonly string[]): StringTest {
  const list = new BlockList()
  for (const block of blocks) {
    const [address, prefix] = block.split('/')
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(prefix), family)
  }
  return (ip) => {
    const family = isIP(ip)
    return family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4')
  }
}
