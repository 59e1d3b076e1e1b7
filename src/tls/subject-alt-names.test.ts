import type { PeerCertificate } from 'node:tls'
import { describe, expect, it } from 'vitest'
import { parseSubjectAltNames, subjectAltNameAllowed } from './subject-alt-names.ts'

describe('parseSubjectAltNames', () => {
  it('reads node:tls subjectaltname strings, quoted values included', () => {
    expect(parseSubjectAltNames(undefined)).toEqual([])
    expect(
      parseSubjectAltNames(
        'DNS:a.example.com, URI:spiffe://cluster.local/ns/default/sa/x, IP Address:127.0.0.1',
      ),
    ).toEqual(['a.example.com', 'spiffe://cluster.local/ns/default/sa/x', '127.0.0.1'])
    expect(parseSubjectAltNames('DNS:"a, b", DNS:"q\\"uote", email:me@example.com')).toEqual([
      'a, b',
      'q"uote',
      'me@example.com',
    ])
  })

  it('allows a certificate with any one of the allowed names, exactly', () => {
    const cert = { subjectaltname: 'DNS:x.example.com, URI:spiffe://td/ns/a/sa/b' } as PeerCertificate
    expect(subjectAltNameAllowed(cert, ['spiffe://td/ns/a/sa/b'])).toBe(true)
    expect(subjectAltNameAllowed(cert, ['spiffe://td/ns/a/sa'])).toBe(false)
    expect(subjectAltNameAllowed({} as PeerCertificate, ['x.example.com'])).toBe(false)
  })
})
