// The consistent-hash key of a request (header, cookie, source IP or query parameter), as Envoy's hash policies.

import type { HashKeyModel } from '../../config/model.ts'
import { hex64, splitHash64, xxHash64, xxHash64Into } from './hash.ts'

/** What the hash policies read from a request (RequestContext implements it). */
export interface LbRequest {
  readonly req: {
    readonly rawHeaders: readonly string[]
    /** The request target as received (`/path?query`); absent for a TCP connection. */
    readonly url?: string | undefined
    readonly socket: {
      readonly remoteAddress?: string | undefined
      readonly remotePort?: number | undefined
      readonly localAddress?: string | undefined
      readonly localPort?: number | undefined
    }
  }
  /** A `set-cookie` value for the response, when the cookie policy generated the cookie. */
  hashCookie: string | undefined
}

/**
 * Writes the request's 64-bit hash into `out` (out[0] high, out[1] low 32 bits) and returns true, or
 * returns false when the key is absent (Envoy then uses a random value). Every key is hashed with
 * xxHash64, seed 0, as Envoy's source/common/http/hash_policy.cc does.
 */
export function requestHash(key: HashKeyModel, request: LbRequest, out: Uint32Array): boolean {
  switch (key.kind) {
    case 'header':
      return headerHash(request.req.rawHeaders, key.name, out)
    case 'queryParameter': {
      const url = request.req.url
      const value = url === undefined ? undefined : queryValue(url, key.name)
      if (value === undefined) return false
      xxHash64Into(value, out)
      return true
    }
    case 'sourceIp': {
      const address = request.req.socket.remoteAddress
      if (address === undefined || address === '') return false
      xxHash64Into(ipv4Unmapped(address), out)
      return true
    }
    case 'cookie':
      return cookieHash(key, request, out)
    case 'none':
      return false
  }
}

/**
 * Envoy's HeaderHashMethod: every value of the header, sorted, each hashed with the previous hash as
 * its seed (HashUtil::xxHash64 over a span), so the order the values arrive in does not matter.
 */
function headerHash(rawHeaders: readonly string[], name: string, out: Uint32Array): boolean {
  let first: string | undefined
  let more: string[] | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const header = rawHeaders[i]
    if (header.length !== name.length || header.toLowerCase() !== name) continue
    if (first === undefined) first = rawHeaders[i + 1]
    else if (more === undefined) more = [first, rawHeaders[i + 1]]
    else more.push(rawHeaders[i + 1])
  }
  if (first === undefined) return false
  if (more === undefined) {
    xxHash64Into(first, out)
    return true
  }
  more.sort(byteOrder)
  let hash = 0n
  for (const value of more) hash = xxHash64(value, hash)
  splitHash64(hash, out)
  return true
}

/** std::sort's order for string_views: bytewise, which for latin1 strings is code-unit order. */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The first value of `name` in the query, not percent-decoded: Envoy's QueryParameterHashMethod parses
 * the :path with QueryParamsMulti::parseQueryString, which splits on `&` and the first `=` and leaves
 * values as sent (a parameter without `=` has the empty value).
 */
export function queryValue(url: string, name: string): string | undefined {
  let start = url.indexOf('?') + 1
  if (start === 0) return undefined
  while (start < url.length) {
    let end = url.indexOf('&', start)
    if (end === -1) end = url.length
    const equals = url.indexOf('=', start)
    const nameEnd = equals === -1 || equals > end ? end : equals
    if (nameEnd - start === name.length && url.startsWith(name, start)) {
      return nameEnd === end ? '' : url.slice(nameEnd + 1, end)
    }
    start = end + 1
  }
  return undefined
}

/**
 * Envoy reads a peer on a dual-stack socket that sent IPv4 as an IPv4 address (an IPv4-mapped IPv6
 * address becomes Ipv4Instance in addressFromSockAddr); Node reports it as `::ffff:a.b.c.d`.
 */
function ipv4Unmapped(address: string): string {
  return address.length > 7 && address.startsWith('::ffff:') && address.includes('.', 7)
    ? address.slice(7)
    : address
}

/** Envoy's Address::Instance::asString(): `ip:port`, or `[ip]:port` for IPv6. */
function addressString(address: string | undefined, port: number | undefined): string {
  const ip = ipv4Unmapped(address ?? '')
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`
}

/**
 * Hashes the cookie's value. When it is absent (or empty) and a ttl is set, Envoy generates one:
 * the hex xxHash64 of the connection's remote then local address (so concurrent requests on a
 * connection agree; thread_aware_lb_impl.cc generateCookie), hashes that, and sets it on the response:
 * `name="<16 hex>"; Max-Age=<ttl>; Path=<path>; <attributes>; HttpOnly` (no Max-Age when ttl is 0).
 */
function cookieHash(
  key: Extract<HashKeyModel, { kind: 'cookie' }>,
  request: LbRequest,
  out: Uint32Array,
): boolean {
  const present = cookieValue(request.req.rawHeaders, key.name)
  if (present !== undefined && present !== '') {
    xxHash64Into(present, out)
    return true
  }
  // A TCP connection (no request target) has no response to carry the cookie: Envoy's tcp_proxy
  // hashes only the source IP (Istio sets no other hash policy there), so it balances at random.
  if (key.ttlSeconds === undefined || request.req.url === undefined) return false
  const s = request.req.socket
  const value = hex64(
    xxHash64(addressString(s.remoteAddress, s.remotePort) + addressString(s.localAddress, s.localPort)),
  )
  let cookie = `${key.name}="${value}"`
  if (key.ttlSeconds > 0) cookie += `; Max-Age=${key.ttlSeconds}`
  if (key.path !== '') cookie += `; Path=${key.path}`
  for (const a of key.attributes) cookie += a.value === '' ? `; ${a.name}` : `; ${a.name}=${a.value}`
  request.hashCookie = `${cookie}; HttpOnly`
  xxHash64Into(value, out)
  return true
}

/**
 * The first value of cookie `name` in any Cookie header, as Envoy's Utility::parseCookieValue reads
 * it: pairs split on `;`, the name from the first non-space to `=`, the value as sent after it, and
 * one pair of surrounding double quotes removed.
 */
export function cookieValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const header = rawHeaders[i]
    if (header.length !== 6 || header.toLowerCase() !== 'cookie') continue
    for (const pair of rawHeaders[i + 1].split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1) continue
      let start = 0
      while (start < eq && pair.charCodeAt(start) === 0x20) start++
      if (eq - start !== name.length || !pair.startsWith(name, start)) continue
      const value = pair.slice(eq + 1)
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
    }
  }
  return undefined
}

/** A uniformly random 64-bit value in `out`, for a request without a key (Envoy's random_.random()). */
export function randomHash(random: () => number, out: Uint32Array): void {
  out[0] = Math.floor(random() * 0x1_0000_0000)
  out[1] = Math.floor(random() * 0x1_0000_0000)
}
