// Reads and checks a TLS listener's PEM files (certificate, the key that matches it, client CA, CRL); errors name the file.

import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { MODERN_TLS } from './tls-defaults.ts'
import type { DownstreamTlsModel, TlsCredentials, TlsFilesModel } from './tls-model.ts'

export type TlsFileField = keyof TlsFilesModel

/** A TLS file that cannot be used; `field` is the ServerTLSSettings field naming it (undefined: the settings). */
export class TlsFileError extends Error {
  readonly code = 'TLS_FILE_INVALID'
  readonly field: TlsFileField | undefined

  constructor(field: TlsFileField | undefined, message: string) {
    super(message)
    this.name = 'TlsFileError'
    this.field = field
  }
}

const FIELDS: readonly TlsFileField[] = ['serverCertificate', 'privateKey', 'caCertificates', 'caCrl']

function cannotRead(field: TlsFileField, path: string, error: unknown): TlsFileError {
  return new TlsFileError(field, `${field} ${path}: cannot read: ${(error as Error).message}`)
}

function credentialsFrom(contents: Partial<Record<TlsFileField, Buffer>>): TlsCredentials {
  return {
    cert: contents.serverCertificate ?? Buffer.alloc(0),
    key: contents.privateKey ?? Buffer.alloc(0),
    ca: contents.caCertificates,
    crl: contents.caCrl,
  }
}

/** Reads the files now (config compile time); throws a TlsFileError for a file that cannot be read. */
export function readCredentialsSync(files: TlsFilesModel): TlsCredentials {
  const contents: Partial<Record<TlsFileField, Buffer>> = {}
  for (const field of FIELDS) {
    const path = files[field]
    if (path === undefined) continue
    try {
      contents[field] = readFileSync(path)
    } catch (error) {
      throw cannotRead(field, path, error)
    }
  }
  return credentialsFrom(contents)
}

/** Reads the files without blocking (certificate rotation); throws a TlsFileError as readCredentialsSync. */
export async function readCredentials(files: TlsFilesModel): Promise<TlsCredentials> {
  const contents: Partial<Record<TlsFileField, Buffer>> = {}
  for (const field of FIELDS) {
    const path = files[field]
    if (path === undefined) continue
    try {
      contents[field] = await readFile(path)
    } catch (error) {
      throw cannotRead(field, path, error)
    }
  }
  return credentialsFrom(contents)
}

type TlsOptionsModel = Pick<DownstreamTlsModel, 'files' | 'minVersion' | 'maxVersion' | 'ciphers'>

/** The node:tls options of a listener with these credentials. */
export function secureContextOptions(
  tls: TlsOptionsModel,
  credentials: TlsCredentials,
): SecureContextOptions {
  const options: SecureContextOptions = { cert: credentials.cert, key: credentials.key }
  if (credentials.ca !== undefined) options.ca = credentials.ca
  if (credentials.crl !== undefined) options.crl = credentials.crl
  options.minVersion = tls.minVersion ?? MODERN_TLS.minVersion
  if (tls.maxVersion !== undefined) options.maxVersion = tls.maxVersion
  options.ciphers = tls.ciphers ?? MODERN_TLS.ciphers
  options.ecdhCurve = MODERN_TLS.ecdhCurve
  options.secureOptions = MODERN_TLS.secureOptions
  return options
}

/**
 * Throws a TlsFileError unless the credentials make a working server: the certificate and CA files
 * hold PEM certificates, the key parses and belongs to the certificate, and node:tls accepts it all.
 */
export function checkCredentials(tls: TlsOptionsModel, credentials: TlsCredentials): void {
  const { files } = tls
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(credentials.cert)
  } catch (error) {
    throw invalid('serverCertificate', files.serverCertificate, 'is not a PEM certificate', error)
  }
  let key: ReturnType<typeof createPrivateKey>
  try {
    key = createPrivateKey(credentials.key)
  } catch (error) {
    throw invalid('privateKey', files.privateKey, 'is not a PEM private key', error)
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new TlsFileError(
      'privateKey',
      `privateKey ${files.privateKey} does not match the certificate in ${files.serverCertificate}`,
    )
  }
  if (credentials.ca !== undefined) {
    try {
      new X509Certificate(credentials.ca)
    } catch (error) {
      throw invalid('caCertificates', files.caCertificates ?? '', 'is not a PEM certificate bundle', error)
    }
  }
  if (credentials.crl !== undefined) {
    try {
      createSecureContext({ crl: credentials.crl })
    } catch (error) {
      throw invalid('caCrl', files.caCrl ?? '', 'is not a PEM certificate revocation list', error)
    }
  }
  try {
    createSecureContext(secureContextOptions(tls, credentials))
  } catch (error) {
    throw new TlsFileError(undefined, `cannot make a TLS context: ${(error as Error).message}`)
  }
}

function invalid(field: TlsFileField, path: string, what: string, error: unknown): TlsFileError {
  return new TlsFileError(field, `${field} ${path} ${what} (${(error as Error).message})`)
}

/** True when both hold the same bytes (a watched file was touched but not changed). */
export function sameCredentials(a: TlsCredentials, b: TlsCredentials): boolean {
  const same = (x: Buffer | undefined, y: Buffer | undefined): boolean =>
    x === undefined || y === undefined ? x === y : x.equals(y)
  return same(a.cert, b.cert) && same(a.key, b.key) && same(a.ca, b.ca) && same(a.crl, b.crl)
}
