// Classifies a connection by its first bytes: TLS ClientHello, HTTP/2 preface, HTTP/1 request line, or opaque TCP.

import type { DetectedProtocol } from '../protocol/detected-protocol.ts'
import { METHODS } from '../protocol/node-http.ts'
import { type ClientHello, looksLikeTls, parseClientHello } from './detect-client-hello.ts'

export type { DetectedProtocol }

export interface Detection {
  readonly protocol: DetectedProtocol
  /** Set when the protocol is `tls`. */
  readonly clientHello?: ClientHello
}

/** HTTP/2's connection preface (RFC 9113 §3.4), sent first by a client with prior knowledge. */
export const http2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

/** How much of a request line is read before deciding it is HTTP/1 anyway (a very long target). */
export const maxRequestLineBytes = 8 * 1024

/** Methods llhttp accepts, which is what node:http will parse (PRI is HTTP/2's preface, not HTTP/1). */
const methods = METHODS.filter((m) => m !== 'PRI')
const longestMethod = Math.max(...methods.map((m) => m.length))
const methodSet = new Set(methods)

type Verdict = boolean | undefined

/**
 * The protocol these first bytes start, or undefined when more bytes are needed to tell. With
 * `final` (the client closed, the buffer cap or the detection timeout was reached) the answer is
 * never undefined: whatever is still ambiguous is opaque TCP.
 */
export function detectProtocol(data: Buffer, final = false): Detection | undefined {
  const tls = looksLikeTls(data)
  if (tls === true) {
    const hello = parseClientHello(data)
    if (hello === 'invalid') return { protocol: 'tcp' }
    if (hello !== 'incomplete') return { protocol: 'tls', clientHello: hello }
    return final ? { protocol: 'tcp' } : undefined
  }
  const h2 = isHttp2Preface(data)
  if (h2 === true) return { protocol: 'http2' }
  const h1 = isHttp1RequestLine(data)
  if (h1 === true) return { protocol: 'http1' }
  if (final || (tls === false && h2 === false && h1 === false)) return { protocol: 'tcp' }
  return undefined
}

/**
 * On a declared HTTP port, as Envoy's AUTO codec: the HTTP/2 preface means HTTP/2, anything else is
 * left to the HTTP/1.1 codec (which answers garbage with 400).
 */
export function detectHttpVersion(data: Buffer, final = false): Detection | undefined {
  const h2 = isHttp2Preface(data)
  if (h2 === true) return { protocol: 'http2' }
  if (h2 === false || final) return { protocol: 'http1' }
  return undefined
}

function isHttp2Preface(data: Buffer): Verdict {
  const n = Math.min(data.length, http2Preface.length)
  if (data.compare(http2Preface, 0, n, 0, n) !== 0) return false
  return n === http2Preface.length ? true : undefined
}

/**
 * `METHOD SP target SP HTTP/1.x CRLF`, as Envoy's http_inspector requires: a known method, then a
 * request line that ends in HTTP/1.0 or HTTP/1.1. A line longer than maxRequestLineBytes counts as HTTP.
 */
function isHttp1RequestLine(data: Buffer): Verdict {
  const space = data.indexOf(0x20)
  if (space === -1) {
    if (data.length > longestMethod) return false
    const start = data.toString('latin1')
    return methods.some((m) => m.startsWith(start)) ? undefined : false
  }
  if (!methodSet.has(data.toString('latin1', 0, space))) return false
  const lf = data.indexOf(0x0a, space)
  if (lf === -1) return data.length >= maxRequestLineBytes ? true : undefined
  const end = lf > 0 && data[lf - 1] === 0x0d ? lf - 1 : lf
  const version = data.toString('latin1', Math.max(space, end - 9), end)
  return version === ' HTTP/1.1' || version === ' HTTP/1.0'
}
