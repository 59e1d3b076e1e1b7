// A peer certificate's subject alternative names, read from node:tls' `subjectaltname` string, and the check against allowed ones.

import type { PeerCertificate } from 'node:tls'

/**
 * The SAN values (`spiffe://…`, DNS names, IP addresses, emails) without their type prefix. node:tls
 * joins entries with `, ` as `TYPE:value`, and JSON-quotes a value holding a comma or a quote.
 */
export function parseSubjectAltNames(text: string | undefined): string[] {
  const names: string[] = []
  if (text === undefined || text === '') return names
  let i = 0
  while (i < text.length) {
    const colon = text.indexOf(':', i)
    if (colon < 0) break
    let value: string
    let next: number
    if (text[colon + 1] === '"') {
      let end = colon + 2
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1
      try {
        value = JSON.parse(text.slice(colon + 1, end + 1)) as string
      } catch {
        value = text.slice(colon + 2, end)
      }
      next = text.indexOf(', ', end)
    } else {
      next = text.indexOf(', ', colon)
      value = text.slice(colon + 1, next < 0 ? text.length : next)
    }
    names.push(value)
    if (next < 0) break
    i = next + 2
  }
  return names
}

/** True when the certificate carries one of `allowed` as a SAN (exact match, as Istio configures Envoy). */
export function subjectAltNameAllowed(certificate: PeerCertificate, allowed: readonly string[]): boolean {
  return parseSubjectAltNames(certificate.subjectaltname).some((name) => allowed.includes(name))
}
