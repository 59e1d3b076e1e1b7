// Unit tests for compiled matchers, host lookup, rewrites, redirects and header edits.

import { RE2JS } from 're2js'
import { describe, expect, it } from 'vitest'
import { HeaderEdits } from './header-edits.ts'
import { redirectLocation } from './redirect.ts'
import type { RequestFacts } from './request-facts.ts'
import { RequestMatch } from './request-match.ts'
import { type ForwardAction, pickDestination, Route, rewritePath } from './route.ts'
import { RouteTable, type VirtualHost } from './route-table.ts'
import { compileStringMatch } from './string-match.ts'

function facts(
  over: Partial<RequestFacts> & { headers?: Record<string, string>; query?: Record<string, string> },
): RequestFacts {
  return {
    method: over.method ?? 'GET',
    path: over.path ?? '/',
    scheme: over.scheme ?? 'http',
    authority: over.authority ?? 'reviews',
    port: over.port ?? 9080,
    header: (name) => over.headers?.[name],
    queryParam: (name) => over.query?.[name],
  }
}

const forward = (extra: Partial<ForwardAction> = {}): ForwardAction => ({
  kind: 'forward',
  destinations: [
    { clusterName: 'a', weight: 1, requestHeaders: HeaderEdits.none, responseHeaders: HeaderEdits.none },
  ],
  totalWeight: 1,
  ...extra,
})

describe('StringMatch', () => {
  it('exact, prefix and regex, with and without case', () => {
    expect(compileStringMatch({ exact: '/a' }).test('/a')).toBe(true)
    expect(compileStringMatch({ exact: '/a' }).test('/A')).toBe(false)
    expect(compileStringMatch({ exact: '/a' }, true).test('/A')).toBe(true)
    expect(compileStringMatch({ prefix: '/api' }).test('/api/v1')).toBe(true)
    expect(compileStringMatch({ prefix: '/API' }, true).test('/api/v1')).toBe(true)
    expect(compileStringMatch({ regex: '/v[0-9]+' }).test('/v12')).toBe(true)
    // RE2 regex must match the whole value, as Envoy's safe_regex.
    expect(compileStringMatch({ regex: '/v[0-9]+' }).test('/v12/x')).toBe(false)
    expect(compileStringMatch({ regex: 'ab' }, true).test('AB')).toBe(true)
    expect(compileStringMatch({}).test('anything')).toBe(true)
  })

  it('rejects patterns RE2 does not accept (no backreferences)', () => {
    expect(() => compileStringMatch({ regex: '(a)\\1' })).toThrow()
  })
})

describe('RequestMatch', () => {
  const m = new RequestMatch({
    uri: compileStringMatch({ prefix: '/api' }),
    method: compileStringMatch({ exact: 'GET' }),
    port: 9080,
    headers: [
      { name: 'end-user', matcher: compileStringMatch({ exact: 'jason' }), inverted: false },
      { name: 'x-debug', matcher: compileStringMatch({}), inverted: true },
    ],
    queryParams: [{ name: 'v', matcher: compileStringMatch({ regex: '[0-9]' }) }],
  })
  const ok = { path: '/api/x', headers: { 'end-user': 'jason' }, query: { v: '1' } }

  it('ANDs every condition', () => {
    expect(m.matches(facts(ok))).toBe(true)
    expect(m.matches(facts({ ...ok, method: 'POST' }))).toBe(false)
    expect(m.matches(facts({ ...ok, port: 80 }))).toBe(false)
    expect(m.matches(facts({ ...ok, path: '/other' }))).toBe(false)
    expect(m.matches(facts({ ...ok, headers: {} }))).toBe(false)
    expect(m.matches(facts({ ...ok, headers: { 'end-user': 'jason', 'x-debug': '' } }))).toBe(false)
    expect(m.matches(facts({ ...ok, query: {} }))).toBe(false)
    expect(m.matches(facts({ ...ok, query: { v: 'x' } }))).toBe(false)
  })
})

describe('RouteTable', () => {
  const vh = (name: string, domains: string[]): VirtualHost => ({ name, domains, port: 80, routes: [] })
  const table = new RouteTable('80', [
    vh('exact', ['reviews', 'reviews:80']),
    vh('wild', ['*.example.com']),
    vh('wilder', ['*.api.example.com']),
    vh('all', ['*']),
  ])

  it('finds exact names case-insensitively, then the longest wildcard, then the catch-all', () => {
    expect(table.lookup('reviews')?.name).toBe('exact')
    expect(table.lookup('REVIEWS:80')?.name).toBe('exact')
    expect(table.lookup('a.example.com')?.name).toBe('wild')
    expect(table.lookup('a.api.example.com')?.name).toBe('wilder')
    expect(table.lookup('example.com')?.name).toBe('all')
  })

  it('without a catch-all an unknown host has no virtual host', () => {
    expect(new RouteTable('x', [vh('exact', ['reviews'])]).lookup('ratings')).toBeUndefined()
  })
})

describe('rewrites', () => {
  it('replaces the matched prefix and keeps the query', () => {
    expect(rewritePath(forward({ pathRewrite: { prefix: '/old', replacement: '/new' } }), '/old/x?a=1')).toBe(
      '/new/x?a=1',
    )
  })
  it('replaces the whole path for exact and regex matches', () => {
    expect(rewritePath(forward({ pathRewrite: { replacement: '/fixed' } }), '/exact?q')).toBe('/fixed?q')
  })
  it('applies uriRegexRewrite to the path only', () => {
    const action = forward({ regexRewrite: { pattern: RE2JS.compile('^/a/(\\d+)$'), replacement: '/b/$1' } })
    expect(rewritePath(action, '/a/7?x=/a/8')).toBe('/b/7?x=/a/8')
  })
  it('leaves the path alone without a rewrite', () => {
    expect(rewritePath(forward(), '/same?x')).toBe('/same?x')
  })
})

describe('redirectLocation', () => {
  const req = { scheme: 'http', authority: 'reviews:9080', url: '/old?q=1', port: 9080 }
  it('keeps what the redirect does not set', () => {
    expect(redirectLocation({ kind: 'redirect', uri: '/new', status: 301 }, req)).toBe(
      'http://reviews:9080/new?q=1',
    )
  })
  it('replaces scheme, authority and port; drops default ports', () => {
    expect(
      redirectLocation({ kind: 'redirect', scheme: 'https', authority: 'a.example', status: 301 }, req),
    ).toBe('https://a.example/old?q=1')
    expect(redirectLocation({ kind: 'redirect', scheme: 'https', port: 443, status: 301 }, req)).toBe(
      'https://reviews/old?q=1',
    )
    expect(
      redirectLocation({ kind: 'redirect', derivePort: 'FROM_PROTOCOL_DEFAULT', status: 301 }, req),
    ).toBe('http://reviews/old?q=1')
    expect(
      redirectLocation(
        { kind: 'redirect', derivePort: 'FROM_REQUEST_PORT', status: 301 },
        { ...req, authority: 'reviews' },
      ),
    ).toBe('http://reviews:9080/old?q=1')
  })
})

describe('HeaderEdits', () => {
  it('removes, sets (replacing) and adds', () => {
    const edits = new HeaderEdits({ set: { 'X-A': '1' }, add: { 'x-b': '2' }, remove: ['x-c'] })
    const headers = ['x-a', 'old', 'x-b', 'keep', 'x-c', 'gone', 'y', 'z']
    edits.applyTo(headers)
    expect(headers).toEqual(['x-b', 'keep', 'y', 'z', 'x-a', '1', 'x-b', '2'])
  })
})

describe('weighted destinations', () => {
  it('never picks a zero share and roughly follows the weights', () => {
    const d = (clusterName: string, weight: number) => ({
      clusterName,
      weight,
      requestHeaders: HeaderEdits.none,
      responseHeaders: HeaderEdits.none,
    })
    const action = forward({ destinations: [d('a', 10), d('b', 90)], totalWeight: 100 })
    let a = 0
    for (let i = 0; i < 10_000; i++) if (pickDestination(action).clusterName === 'a') a++
    expect(a).toBeGreaterThan(800)
    expect(a).toBeLessThan(1200)
  })

  it('a route without match matches everything', () => {
    const r = new Route({
      name: 'x',
      action: forward(),
      requestHeaders: HeaderEdits.none,
      responseHeaders: HeaderEdits.none,
      timeoutMs: 0,
    })
    expect(r.matches(facts({}))).toBe(true)
  })
})
