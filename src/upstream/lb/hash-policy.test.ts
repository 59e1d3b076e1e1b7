// Unit tests for the request hash keys: header, query parameter, source IP, and cookies read or generated.

import { describe, expect, it } from 'vitest'
import type { HashKeyModel } from '../../config/model.ts'
import { hash32 } from './hash.ts'
import { cookieValue, requestHash } from './hash-policy.ts'
import { request } from './test-support.ts'

const cookie = (
  ttlSeconds: number | undefined,
  path = '',
  attributes: { name: string; value: string }[] = [],
) => ({ kind: 'cookie', name: 'user', path, ttlSeconds, attributes }) as HashKeyModel

describe('requestHash', () => {
  it('hashes a header, a query parameter or the source address', () => {
    expect(requestHash({ kind: 'header', name: 'x-user' }, request({ 'x-user': 'a' }))).toBe(hash32('a'))
    expect(requestHash({ kind: 'header', name: 'x-user' }, request())).toBeUndefined()
    expect(requestHash({ kind: 'queryParameter', name: 'u' }, request({}, { u: 'b' }))).toBe(hash32('b'))
    expect(requestHash({ kind: 'sourceIp' }, request({}, {}, '10.9.8.7'))).toBe(hash32('10.9.8.7'))
    expect(requestHash({ kind: 'none' }, request())).toBeUndefined()
  })

  it('hashes a cookie value without its quotes, from any Cookie header', () => {
    expect(cookieValue(['Cookie', 'a=1; user="abc"; b=2'], 'user')).toBe('abc')
    expect(cookieValue(['cookie', 'a=1', 'COOKIE', 'user=xyz'], 'user')).toBe('xyz')
    expect(cookieValue(['cookie', 'username=1'], 'user')).toBeUndefined()
    const r = request({ cookie: 'user=abc' })
    expect(requestHash(cookie(60), r)).toBe(hash32('abc'))
    expect(r.hashCookie).toBeUndefined()
  })

  it('generates the cookie when absent and a ttl is set, as Envoy writes it', () => {
    const r = request()
    const hash = requestHash(
      cookie(60, '/', [
        { name: 'SameSite', value: 'Lax' },
        { name: 'Secure', value: '' },
      ]),
      r,
    )
    expect(r.hashCookie).toMatch(/^user="[0-9a-f]{16}"; Max-Age=60; Path=\/; SameSite=Lax; Secure; HttpOnly$/)
    const value = /"([0-9a-f]{16})"/.exec(r.hashCookie ?? '')?.[1] ?? ''
    // The next request carries the cookie and hashes the same.
    expect(requestHash(cookie(60), request({ cookie: `user="${value}"` }))).toBe(hash)
    // ttl 0: a session cookie (no Max-Age); no ttl: no cookie and no hash.
    const session = request()
    requestHash(cookie(0), session)
    expect(session.hashCookie).toMatch(/^user="[0-9a-f]{16}"; HttpOnly$/)
    const none = request()
    expect(requestHash(cookie(undefined), none)).toBeUndefined()
    expect(none.hashCookie).toBeUndefined()
  })
})
