// Client TLS for upstream connections: secure contexts per cluster TLS model, rebuilt when the workload certificate or the files change.

import { readFileSync } from 'node:fs'
import type { LookupFunction } from 'node:net'
import {
  type ConnectionOptions,
  checkServerIdentity,
  connect,
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
  type TLSSocket,
} from 'node:tls'
import { FileWatcher } from '../files/file-watcher.ts'
import { log } from '../telemetry/log.ts'
import { parseSubjectAltNames } from './subject-alt-names.ts'
import { MODERN_TLS } from './tls-defaults.ts'
import type { UpstreamTlsModel } from './upstream-tls-model.ts'
import type { WorkloadIdentity } from './workload-identity.ts'

/** OpenSSL's verification failures: BoringSSL (Envoy) reports every one as CERTIFICATE_VERIFY_FAILED. */
const VERIFY_FAILURES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'UNABLE_TO_GET_CRL',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

/** Envoy's transport failure reason for a certificate that did not verify (ssl_socket.cc failureReason). */
const CERTIFICATE_VERIFY_FAILED =
  'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end'

/**
 * A TLS connection to an upstream that failed before it was usable; `transportFailureReason` is what
 * Envoy reports for it (`TLS_error:|…:TLS_error_end`) and goes into the 503's body and details.
 */
export class UpstreamTlsError extends Error {
  readonly code: string
  readonly transportFailureReason: string

  constructor(code: string, message: string, transportFailureReason: string) {
    super(message)
    this.name = 'UpstreamTlsError'
    this.code = code
    this.transportFailureReason = transportFailureReason
  }

  /** Wraps an error from node:tls during the handshake. */
  static from(err: Error): UpstreamTlsError {
    const code = (err as { code?: unknown }).code
    const name = typeof code === 'string' ? code : 'TLS_HANDSHAKE_FAILED'
    const reason = VERIFY_FAILURES.has(name)
      ? CERTIFICATE_VERIFY_FAILED
      : `TLS_error:|${name}:${err.message}:TLS_error_end`
    return new UpstreamTlsError(name, err.message, reason)
  }
}

/** The check of the server's certificate beyond its chain: one of the SANs, or the host name, or none. */
function identityCheck(model: UpstreamTlsModel): ConnectionOptions['checkServerIdentity'] {
  if (model.insecureSkipVerify) return () => undefined
  const allowed = model.subjectAltNames
  if (allowed.length > 0) {
    return (_host: string, certificate: PeerCertificate) => {
      const names = parseSubjectAltNames(certificate.subjectaltname)
      if (names.some((name) => allowed.includes(name))) return undefined
      const err = new Error(
        `server certificate SANs [${names.join(', ')}] match none of [${allowed.join(', ')}]`,
      ) as Error & { code: string }
      err.code = 'ERR_TLS_CERT_ALTNAME_INVALID'
      return err
    }
  }
  const host = model.verifyHost
  if (host !== '')
    return (_host: string, certificate: PeerCertificate) => checkServerIdentity(host, certificate)
  return () => undefined
}

/**
 * Owned by the runtime and shared by every cluster. A secure context is built once per TLS model and
 * reused by each new connection; when the workload certificate rotates, or a DestinationRule's
 * certificate file changes, the contexts are dropped and the next new connection builds a fresh one.
 * Connections already open keep what they negotiated.
 */
export class UpstreamTls {
  #identity: WorkloadIdentity | undefined
  readonly #contexts = new Map<string, SecureContext>()
  readonly #checks = new Map<string, ConnectionOptions['checkServerIdentity']>()
  readonly #watched = new Set<string>()
  readonly #watcher = new FileWatcher(() => this.#contexts.clear())

  /** Uses `identity` for ISTIO_MUTUAL from now on, and follows its rotations. */
  useIdentity(identity: WorkloadIdentity): void {
    this.#identity = identity
    identity.onChange(() => this.#contexts.clear())
    this.#contexts.clear()
  }

  /**
   * The node:tls options of a new connection with `model`, offering `alpn`. Throws an UpstreamTlsError
   * when the credentials are missing or unusable (a connection failure, 503 UF).
   */
  options(model: UpstreamTlsModel, alpn: readonly string[]): ConnectionOptions {
    let checkIdentity = this.#checks.get(model.key)
    if (checkIdentity === undefined) {
      checkIdentity = identityCheck(model)
      this.#checks.set(model.key, checkIdentity)
    }
    const options: ConnectionOptions = {
      secureContext: this.#contextFor(model),
      rejectUnauthorized: !model.insecureSkipVerify,
      checkServerIdentity: checkIdentity,
      ALPNProtocols: alpn as string[],
    }
    if (model.sni !== '') options.servername = model.sni
    return options
  }

  /**
   * Starts a TLS connection to host:port; `onReady` hears once of the handshake's end (an UpstreamTlsError
   * on failure). Throws an UpstreamTlsError at once when the credentials are missing or unusable.
   */
  connect(
    model: UpstreamTlsModel,
    alpn: readonly string[],
    target: { readonly host: string; readonly port: number; readonly lookup?: LookupFunction },
    onReady: (err: UpstreamTlsError | undefined) => void,
  ): TLSSocket {
    const socket = connect({ ...this.options(model, alpn), ...target })
    socket.setNoDelay(true)
    const onError = (err: Error): void => {
      socket.off('secureConnect', onSecure)
      const failure = UpstreamTlsError.from(err)
      // Envoy counts these as ssl.connection_error / ssl.fail_verify_*; here the endpoint's cx_connect_fail counts them.
      log.info(
        `upstream TLS (${model.mode}) to ${target.host}:${target.port} refused: ${failure.code}: ${failure.message}`,
      )
      onReady(failure)
    }
    const onSecure = (): void => {
      socket.off('error', onError)
      onReady(undefined)
    }
    socket.once('error', onError)
    socket.once('secureConnect', onSecure)
    return socket
  }

  #contextFor(model: UpstreamTlsModel): SecureContext {
    const cached = this.#contexts.get(model.key)
    if (cached !== undefined) return cached
    const context = model.mode === 'ISTIO_MUTUAL' ? this.#istioContext() : this.#fileContext(model)
    this.#contexts.set(model.key, context)
    return context
  }

  #istioContext(): SecureContext {
    const identity = this.#identity
    if (identity === undefined) {
      throw new UpstreamTlsError(
        'NO_WORKLOAD_CERTIFICATE',
        'ISTIO_MUTUAL needs the workload certificate (bootstrap tls), and this proxy has none',
        'TLS_error:|no workload certificate for ISTIO_MUTUAL:TLS_error_end',
      )
    }
    const credentials = identity.current
    return createSecureContext({
      cert: credentials.certChain,
      key: credentials.key,
      ca: credentials.rootCert,
      ...MODERN_TLS,
    })
  }

  #fileContext(model: UpstreamTlsModel): SecureContext {
    const files = model.files
    const read = (field: keyof typeof files): Buffer | undefined => {
      const path = files[field]
      if (path === undefined) return undefined
      this.#watch(path)
      try {
        return readFileSync(path)
      } catch (err) {
        throw new UpstreamTlsError(
          'TLS_FILE_UNREADABLE',
          `${field} ${path}: ${(err as Error).message}`,
          `TLS_error:|cannot read ${field} ${path}:TLS_error_end`,
        )
      }
    }
    try {
      const cert = read('clientCertificate')
      const key = read('privateKey')
      const ca = read('caCertificates')
      const crl = read('caCrl')
      return createSecureContext({
        ...(cert === undefined ? {} : { cert }),
        ...(key === undefined ? {} : { key }),
        ...(ca === undefined ? {} : { ca }),
        ...(crl === undefined ? {} : { crl }),
        ...MODERN_TLS,
      })
    } catch (err) {
      if (err instanceof UpstreamTlsError) throw err
      log.error(`upstream TLS (${model.mode}): ${(err as Error).message}`)
      throw new UpstreamTlsError(
        'TLS_FILE_INVALID',
        (err as Error).message,
        `TLS_error:|${(err as Error).message}:TLS_error_end`,
      )
    }
  }

  #watch(path: string): void {
    if (this.#watched.has(path)) return
    this.#watched.add(path)
    this.#watcher.watch([...this.#watched])
  }

  close(): void {
    this.#watcher.close()
  }
}
