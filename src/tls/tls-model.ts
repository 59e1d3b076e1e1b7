// What the compiled model says about a TLS-terminating listener: mode, files, their contents and limits.

import type { SecureVersion } from 'node:tls'

/**
 * A listener that terminates TLS (Sidecar ingress `tls`, modes SIMPLE, MUTUAL, OPTIONAL_MUTUAL). The
 * certificate files are re-read when they change; `credentials` are their contents at compile time.
 */
export interface DownstreamTlsModel {
  readonly mode: 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL'
  /** What the decrypted stream carries: `http` (HTTP/2 or HTTP/1.1 as ALPN chose) or opaque `tcp`. */
  readonly inner: 'http' | 'tcp'
  /** Absolute paths of the PEM files. */
  readonly files: TlsFilesModel
  readonly credentials: TlsCredentials
  /** Client certificate SANs accepted (any one); empty: any certificate the CA signed. */
  readonly subjectAltNames: readonly string[]
  /** node:tls names (`TLSv1.2`); undefined: node's default. */
  readonly minVersion: SecureVersion | undefined
  readonly maxVersion: SecureVersion | undefined
  /** OpenSSL cipher list (`a:b`); undefined: node's default. */
  readonly ciphers: string | undefined
  /** Where the `tls` block is, for messages about its files after a reload of them. */
  readonly source: { readonly file: string; readonly line: number }
}

export interface TlsFilesModel {
  readonly serverCertificate: string
  readonly privateKey: string
  readonly caCertificates: string | undefined
  readonly caCrl: string | undefined
}

/** The PEM contents of a TLS listener's files. */
export interface TlsCredentials {
  readonly cert: Buffer
  readonly key: Buffer
  readonly ca: Buffer | undefined
  readonly crl: Buffer | undefined
}
