// A Sidecar ingress listener's `tls` ──► DownstreamTlsModel: paths resolved beside the resource file, files read and checked.

import { isAbsolute, resolve } from 'node:path'
import type { SecureVersion } from 'node:tls'
import { checkCredentials, readCredentialsSync, TlsFileError } from '../../tls/server-credentials.ts'
import { checkCipherSuites } from '../istio/cipher-suites.ts'
import type { ServerTlsSettings, TlsProtocol } from '../istio/server-tls-settings.ts'
import type { ConfigMessage } from '../messages.ts'
import type { DownstreamTlsModel, TlsFilesModel } from '../model.ts'

const VERSIONS: Readonly<Record<TlsProtocol, SecureVersion | undefined>> = {
  TLS_AUTO: undefined,
  TLSV1_0: 'TLSv1',
  TLSV1_1: 'TLSv1.1',
  TLSV1_2: 'TLSv1.2',
  TLSV1_3: 'TLSv1.3',
}

/** The protocol a port carries once TLS is terminated on it (Istio's AfterTLSTermination). */
export function afterTlsTermination(protocol: string): string {
  if (protocol === 'HTTPS') return 'HTTP'
  if (protocol === 'TLS') return 'TCP'
  return protocol
}

/** A path from the resource file's directory, as the bootstrap's paths are from the bootstrap's directory. */
function resolvePath(resourceFile: string, path: string): string {
  return isAbsolute(path) ? path : resolve(resourceFile, '..', path)
}

/**
 * Compiles `tls` (already validated: a terminating mode with certificate and key). `at(field)` is an
 * error message located at that field of the `tls` block (the block itself when undefined).
 */
export function compileIngressTls(
  tls: ServerTlsSettings,
  inner: DownstreamTlsModel['inner'],
  resourceFile: string,
  at: (field?: string) => ConfigMessage,
): DownstreamTlsModel | ConfigMessage {
  const mode = tls.mode
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL')
    return { ...at('mode'), message: `tls mode ${mode} does not terminate TLS` }
  if (tls.serverCertificate === undefined || tls.privateKey === undefined)
    return { ...at(), message: 'tls needs serverCertificate and privateKey' }
  const optional = (path: string | undefined): string | undefined =>
    path === undefined || path === '' ? undefined : resolvePath(resourceFile, path)
  const files: TlsFilesModel = {
    serverCertificate: resolvePath(resourceFile, tls.serverCertificate),
    privateKey: resolvePath(resourceFile, tls.privateKey),
    caCertificates: mode === 'SIMPLE' ? undefined : optional(tls.caCertificates),
    caCrl: mode === 'SIMPLE' ? undefined : optional(tls.caCrl),
  }
  const ciphers = checkCipherSuites(tls.cipherSuites ?? []).valid
  const settings = {
    files,
    minVersion: VERSIONS[tls.minProtocolVersion],
    maxVersion: VERSIONS[tls.maxProtocolVersion],
    ciphers: ciphers.length === 0 ? undefined : ciphers.join(':'),
  }
  try {
    const credentials = readCredentialsSync(files)
    checkCredentials(settings, credentials)
    const { file, line } = at()
    return {
      mode,
      inner,
      ...settings,
      credentials,
      subjectAltNames: mode === 'SIMPLE' ? [] : (tls.subjectAltNames ?? []),
      source: { file, line },
    }
  } catch (error) {
    if (!(error instanceof TlsFileError)) throw error
    return { ...at(error.field), message: `tls: ${error.message}` }
  }
}
