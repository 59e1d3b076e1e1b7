// Unit tests for the request hash keys, after Envoy's test/common/http/hash_policy_test.cc: header, cookie, IP, query.

import { describe, expect, it } from 'vitest'
import type { HashKeyModel } from '../../config/model.ts'
import { cookieValue, type LbRequest, queryValue, requestHash } from './hash-policy.ts'
import { referenceXxh64, request } from './test-support.ts'

/** The request's hash as one 64-bit value, or undefined when the policy found no key. */
function hashOf(key: HashKeyModel, r: LbRequest): bigint | undefined {
  const out = new Uint32Array(2)
  return requestHash(key, r, out) ? (BigInt(out[0]) << 32n) | BigInt(out[1]) : undefined
}
/** Envoy's HashUtil::xxHash64 of a string's bytes, from the independent reference. */
const xx = (text: string, seed = 0n) => referenceXxh64(new Uint8Array(Buffer.from(text, 'latin1')), seed)
const withRaw = (rawHeaders: string[], url = '/'): LbRequest => {
  const r = request()
  return { ...r, req: { ...r.req, rawHeaders, url } }
}
const cookie = (
  ttlSeconds: number | undefined,
  path = '',
  attributes: { name: string; value: string }[] = [],
) => ({ kind: 'cookie', name: 'user', path, ttlSeconds, attributes }) as HashKeyModel

describe('requestHash', () => {
  const header: HashKeyModel = { kind: 'header', name: 'x-test-header' }

  it('HeaderHashForSingleHeaderValue: xxHash64 of the value, any header-name case', () => {
    expect(hashOf(header, withRaw(['X-Test-Header', 'test-value']))).toBe(xx('test-value'))
    // router/config_impl_test.cc: the value "foo" hashes to 3728699739546630719.
    expect(hashOf(header, withRaw(['x-test-header', 'foo']))).toBe(3728699739546630719n)
    expect(hashOf(header, request())).toBeUndefined()
  })

  it('MultipleHeaderValues: values sorted, each hashed with the previous hash as seed, in any order', () => {
    const expected = xx('value2', xx('value1'))
    expect(hashOf(header, withRaw(['x-test-header', 'value1', 'x-test-header', 'value2']))).toBe(expected)
    expect(
      hashOf(header, withRaw(['x-test-header', 'value2', 'other', 'x', 'X-TEST-HEADER', 'value1'])),
    ).toBe(expected)
  })

  it('hashes header bytes as received: a latin1 character is one byte', () => {
    expect(hashOf(header, withRaw(['x-test-header', 'caf\u00e9']))).toBe(xx('caf\u00e9'))
    expect(xx('caf\u00e9')).not.toBe(referenceXxh64(new TextEncoder().encode('café')))
  })

  it('IpHashForValidIp: the downstream address without its port; IPv4-mapped IPv6 as IPv4', () => {
    expect(hashOf({ kind: 'sourceIp' }, request({}, {}, '192.168.1.1'))).toBe(xx('192.168.1.1'))
    expect(hashOf({ kind: 'sourceIp' }, request({}, {}, '::ffff:192.168.1.1'))).toBe(xx('192.168.1.1'))
    expect(hashOf({ kind: 'sourceIp' }, request({}, {}, 'fd00::1'))).toBe(xx('fd00::1'))
  })

  it('QueryParameterHash: the first value, as sent (not percent-decoded); absent gives no hash', () => {
    const query: HashKeyModel = { kind: 'queryParameter', name: 'test-param' }
    expect(hashOf(query, withRaw([], '/test?test-param=param-value'))).toBe(xx('param-value'))
    expect(hashOf(query, withRaw([], '/test?a=1&test-param=a%20b&test-param=2'))).toBe(xx('a%20b'))
    expect(hashOf(query, withRaw([], '/test?test-param&x=1'))).toBe(xx(''))
    expect(hashOf(query, withRaw([], '/test?some-param=other-value'))).toBeUndefined()
    expect(hashOf(query, withRaw([], '/test'))).toBeUndefined()
    expect(queryValue('/p?test-paramx=1&test-param=2', 'test-param')).toBe('2')
  })

  it('CookieHashForPresentCookie: the cookie value without its quotes, from any Cookie header', () => {
    expect(cookieValue(['Cookie', 'a=1; user="abc"; b=2'], 'user')).toBe('abc')
    expect(cookieValue(['cookie', 'a=1', 'COOKIE', 'user=xyz'], 'user')).toBe('xyz')
    expect(cookieValue(['cookie', 'username=1'], 'user')).toBeUndefined()
    const r = withRaw(['cookie', 'user=cookie-value'])
    expect(hashOf(cookie(60), r)).toBe(xx('cookie-value'))
    expect(r.hashCookie).toBeUndefined()
  })

  it('CookieHashForAbsentCookieWithTTL: generates the cookie from the addresses, as Envoy writes it', () => {
    // request(): remote 10.1.2.3:40000, local 127.0.0.1:15001; the value is hex(xxHash64(remote + local)).
    const value = xx('10.1.2.3:40000127.0.0.1:15001').toString(16).padStart(16, '0')
    const r = request()
    const hash = hashOf(
      cookie(60, '/', [
        { name: 'SameSite', value: 'Lax' },
        { name: 'Secure', value: '' },
      ]),
      r,
    )
    expect(r.hashCookie).toBe(`user="${value}"; Max-Age=60; Path=/; SameSite=Lax; Secure; HttpOnly`)
    expect(hash).toBe(xx(value))
    // The next request carries the cookie and hashes the same.
    expect(hashOf(cookie(60), withRaw(['cookie', `user="${value}"`]))).toBe(hash)
    // An empty value counts as absent; ttl 0 makes a session cookie (no Max-Age).
    const session = withRaw(['cookie', 'user='])
    expect(hashOf(cookie(0), session)).toBe(xx(value))
    expect(session.hashCookie).toBe(`user="${value}"; HttpOnly`)
  })

  it('CookieHashForAbsentCookieWithoutTTL: no cookie, no hash', () => {
    const none = request()
    expect(hashOf(cookie(undefined), none)).toBeUndefined()
    expect(none.hashCookie).toBeUndefined()
    expect(hashOf({ kind: 'none' }, request())).toBeUndefined()
    // A TCP connection (no request target): no cookie to set, so no hash; the source IP still hashes.
    const r = request()
    const tcp: LbRequest = { ...r, req: { rawHeaders: [], socket: r.req.socket } }
    expect(hashOf(cookie(60), tcp)).toBeUndefined()
    expect(tcp.hashCookie).toBeUndefined()
    expect(hashOf({ kind: 'sourceIp' }, tcp)).toBe(xx('10.1.2.3'))
  })
})
