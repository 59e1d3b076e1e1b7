// A certificate described as Envoy's admin /certs describes one (envoy/admin/v3/certs.proto CertificateDetails).

import { X509Certificate } from 'node:crypto'

/** envoy.admin.v3.SubjectAlternateName: one of `uri`, `dns`, `ip_address`. */
export type SubjectAlternateName =
  | { readonly uri: string }
  | { readonly dns: string }
  | { readonly ip_address: string }

/** envoy.admin.v3.CertificateDetails as Envoy's proto JSON writes it (uint64 as a string). */
export interface CertificateDetails {
  readonly path: string
  readonly serial_number: string
  readonly subject_alt_names: readonly SubjectAlternateName[]
  readonly days_until_expiration: string
  readonly valid_from: string
  readonly expiration_time: string
}

/** envoy.admin.v3.Certificate: the trusted CA and the certificate chain of one TLS context. */
export interface CertificateSet {
  readonly ca_cert: readonly CertificateDetails[]
  readonly cert_chain: readonly CertificateDetails[]
}

/** The path Envoy shows for a certificate that did not come from a file (SDS, inline). */
export const INLINE_PATH = '<inline>'

const DAY_MS = 24 * 3600 * 1000

function subjectAltNames(certificate: X509Certificate): SubjectAlternateName[] {
  const names: SubjectAlternateName[] = []
  for (const entry of (certificate.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('URI:')) names.push({ uri: entry.slice(4) })
    else if (entry.startsWith('DNS:')) names.push({ dns: entry.slice(4) })
    else if (entry.startsWith('IP Address:')) names.push({ ip_address: entry.slice(11) })
  }
  return names
}

/** RFC 3339 without fractional seconds, as protobuf's Timestamp JSON for whole seconds. */
function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/**
 * The first certificate of a PEM bundle (the leaf of a chain, the first root of a CA bundle, as Envoy
 * shows one of each), or undefined when `pem` holds none that parses.
 */
export function certificateDetails(
  pem: Buffer | string,
  path: string,
  now = Date.now(),
): CertificateDetails | undefined {
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(pem)
  } catch {
    return undefined
  }
  const expiration = certificate.validToDate
  return {
    path,
    serial_number: certificate.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    subject_alt_names: subjectAltNames(certificate),
    // Envoy: whole days left, 0 once expired (Utility::getDaysUntilExpiration).
    days_until_expiration: String(Math.max(0, Math.floor((expiration.getTime() - now) / DAY_MS))),
    valid_from: timestamp(certificate.validFromDate),
    expiration_time: timestamp(expiration),
  }
}

/** One TLS context's certificates as /certs lists them; a missing or unparsable part is an empty list. */
export function certificateSet(
  ca: { readonly pem: Buffer | undefined; readonly path: string } | undefined,
  chain: { readonly pem: Buffer; readonly path: string },
  now = Date.now(),
): CertificateSet {
  const caDetails = ca?.pem === undefined ? undefined : certificateDetails(ca.pem, ca.path, now)
  const chainDetails = certificateDetails(chain.pem, chain.path, now)
  return {
    ca_cert: caDetails === undefined ? [] : [caDetails],
    cert_chain: chainDetails === undefined ? [] : [chainDetails],
  }
}
