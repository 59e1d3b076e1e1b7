// TapFilter: each field's rule (authority with and without a port, case; path prefix; method; status class or code; direction) and the 400 reasons.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { RequestRecord } from '../telemetry/request-record.ts'
import { TapFilter, TapFilterError, type TapFilterSpec } from './tap-filter.ts'

/** The fields a filter reads; the rest of a RequestRecord is never touched (a read would throw). */
function record(
  fields: Partial<Pick<RequestRecord, 'direction' | 'method' | 'authority' | 'path' | 'responseStatus'>>,
): RequestRecord {
  const known = {
    direction: 'outbound',
    method: 'GET',
    authority: 'reviews',
    path: '/',
    responseStatus: 200,
    ...fields,
  }
  return new Proxy(known, {
    get(target, name) {
      if (name in target) return target[name as keyof typeof target]
      throw new Error(`the filter read ${String(name)}`)
    },
  }) as unknown as RequestRecord
}

function matches(spec: TapFilterSpec, fields: Parameters<typeof record>[0]): boolean {
  return new TapFilter(spec).matches(record(fields))
}

describe('TapFilter', () => {
  it('matches everything when empty, a request with no response (status 0) included', () => {
    expect(matches({}, {})).toBe(true)
    expect(matches({}, { responseStatus: 0 })).toBe(true)
  })

  it('takes an authority without a port with any port, case aside', () => {
    const spec = { authority: 'Reviews.default' }
    expect(matches(spec, { authority: 'reviews.default' })).toBe(true)
    expect(matches(spec, { authority: 'REVIEWS.DEFAULT:9080' })).toBe(true)
    expect(matches(spec, { authority: 'reviews.default:' })).toBe(false)
    expect(matches(spec, { authority: 'reviews.default:90a' })).toBe(false)
    expect(matches(spec, { authority: 'reviews.defaults' })).toBe(false)
    expect(matches(spec, { authority: 'reviews' })).toBe(false)
    expect(matches(spec, { authority: 'xreviews.default' })).toBe(false)
  })

  it('takes an authority with a port only with that port', () => {
    const spec = { authority: 'reviews:9080' }
    expect(matches(spec, { authority: 'Reviews:9080' })).toBe(true)
    expect(matches(spec, { authority: 'reviews' })).toBe(false)
    expect(matches(spec, { authority: 'reviews:908' })).toBe(false)
    expect(matches(spec, { authority: 'reviews:90800' })).toBe(false)
    expect(matches(spec, { authority: 'ratings:9080' })).toBe(false)
  })

  it('reads IPv6 literals with and without a port', () => {
    expect(matches({ authority: '[::1]' }, { authority: '[::1]:8080' })).toBe(true)
    expect(matches({ authority: '[::1]:8080' }, { authority: '[::1]:8080' })).toBe(true)
    expect(matches({ authority: '[::1]:8080' }, { authority: '[::1]:80' })).toBe(false)
  })

  it('takes a path prefix of the path, not of the query', () => {
    expect(matches({ path: '/api' }, { path: '/api/v1' })).toBe(true)
    expect(matches({ path: '/api' }, { path: '/ap' })).toBe(false)
    expect(matches({ path: '/api/' }, { path: '/api' })).toBe(false)
  })

  it('takes a method exactly (the filter upper-cased)', () => {
    expect(matches({ method: 'post' }, { method: 'POST' })).toBe(true)
    expect(matches({ method: 'POST' }, { method: 'GET' })).toBe(false)
  })

  it('takes a status class or an exact code', () => {
    expect(matches({ status: '5xx' }, { responseStatus: 503 })).toBe(true)
    expect(matches({ status: '5XX' }, { responseStatus: 599 })).toBe(true)
    expect(matches({ status: '5xx' }, { responseStatus: 404 })).toBe(false)
    expect(matches({ status: '4xx' }, { responseStatus: 0 })).toBe(false)
    expect(matches({ status: '404' }, { responseStatus: 404 })).toBe(true)
    expect(matches({ status: '404' }, { responseStatus: 403 })).toBe(false)
  })

  it('takes a direction', () => {
    expect(matches({ direction: 'inbound' }, { direction: 'inbound' })).toBe(true)
    expect(matches({ direction: 'inbound' }, { direction: 'outbound' })).toBe(false)
  })

  it('needs every field it has to match', () => {
    const spec = { authority: 'reviews', path: '/api', method: 'GET', status: '2xx', direction: 'outbound' }
    expect(matches(spec, { path: '/api/x' })).toBe(true)
    for (const miss of [
      { authority: 'ratings' },
      { path: '/other' },
      { method: 'PUT' },
      { responseStatus: 500 },
      { direction: 'inbound' as const },
    ])
      expect(matches(spec, { path: '/api/x', ...miss }), JSON.stringify(miss)).toBe(false)
  })

  it.each([
    [{ status: '6xx' }, /status must be/],
    [{ status: '20' }, /status must be/],
    [{ status: 'ok' }, /status must be/],
    [{ method: 'GE T' }, /not an HTTP method/],
    [{ authority: 'a/b' }, /not host or host:port/],
    [{ authority: 'a:b' }, /not host or host:port/],
    [{ path: 'api' }, /must start with \//],
    [{ direction: 'sideways' }, /direction must be/],
  ])('refuses %j', (spec, reason) => {
    expect(() => new TapFilter(spec)).toThrow(TapFilterError)
    expect(() => new TapFilter(spec)).toThrow(reason)
  })

  it('agrees with a plain reading of the authority rule on any host and port', () => {
    const host = fc.stringMatching(/^[A-Za-z0-9.-]{1,12}$/)
    const port = fc.option(fc.integer({ min: 1, max: 65535 }).map(String), { nil: undefined })
    fc.assert(
      fc.property(host, port, host, port, (filterHost, filterPort, seenHost, seenPort) => {
        const authority = filterPort === undefined ? filterHost : `${filterHost}:${filterPort}`
        const seen = seenPort === undefined ? seenHost : `${seenHost}:${seenPort}`
        const expected =
          filterHost.toLowerCase() === seenHost.toLowerCase() &&
          (filterPort === undefined || filterPort === seenPort)
        expect(matches({ authority }, { authority: seen })).toBe(expected)
      }),
    )
  })
})
