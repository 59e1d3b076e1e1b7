// The consistent-hash key of a request (header, cookie, source IP or query parameter), as Envoy's hash policies.

import type { HashKeyModel } from '../../config/model.ts'
import { hash32, hashHex64 } from './hash.ts'

/** What the hash policies read from a request (RequestContext implements it). */
export interface LbRequest {
  rawHeader(name: string): string | undefined
  queryParam(name: string): string | undefined
  readonly req: {
    readonly rawHeaders: readonly string[]
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

/** The request's hash, or undefined when the key is absent (Envoy then picks a random endpoint). */
export function requestHash(key: HashKeyModel, request: LbRequest): number | undefined {
  switch (key.kind) {
    case 'header': {
      const value = request.rawHeader(key.name)
      return value === undefined ? undefined : hash32(value)
    }
    case 'queryParameter': {
      const value = request.queryParam(key.name)
      return value === undefined ? undefined : hash32(value)
    }
    case 'sourceIp': {
      const address = request.req.socket.remoteAddress
      return address === undefined ? undefined : hash32(address)
    }
    case 'cookie':
      return cookieHash(key, request)
    case 'none':
      return undefined
  }
}

/**
 * Hashes the cookie's value. When it is absent and a ttl is set, Envoy generates one from the
 * connection's addresses (so concurrent requests on a connection agree), hashes that, and sets it on
 * the response: `name="<16 hex>"; Max-Age=<ttl>; Path=<path>; HttpOnly` (no Max-Age when ttl is 0).
 */
function cookieHash(key: Extract<HashKeyModel, { kind: 'cookie' }>, request: LbRequest): number | undefined {
  const present = cookieValue(request.req.rawHeaders, key.name)
  if (present !== undefined) return hash32(present)
  if (key.ttlSeconds === undefined) return undefined
  const s = request.req.socket
  const value = hashHex64(`${s.remoteAddress}:${s.remotePort}${s.localAddress}:${s.localPort}`)
  let cookie = `${key.name}="${value}"`
  if (key.ttlSeconds > 0) cookie += `; Max-Age=${key.ttlSeconds}`
  if (key.path !== '') cookie += `; Path=${key.path}`
  for (const a of key.attributes) cookie += a.value === '' ? `; ${a.name}` : `; ${a.name}=${a.value}`
  request.hashCookie = `${cookie}; HttpOnly`
  return hash32(value)
}

/** The first value of cookie `name` in any Cookie header, without surrounding quotes. */
export function cookieValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const header = rawHeaders[i]
    if (header.length !== 6 || header.toLowerCase() !== 'cookie') continue
    for (const pair of rawHeaders[i + 1].split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
      const value = pair.slice(eq + 1).trim()
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
    }
  }
  return undefined
}
