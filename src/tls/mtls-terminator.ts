// Terminates Istio mTLS on inbound connections with the workload certificate: the client must present a certificate that chains to the workload root.

import type { Socket } from 'node:net'
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls'
import type { WorkloadCredentials, WorkloadIdentity } from './workload-identity.ts'

/**
 * Protocols the server side accepts by ALPN. node:tls ends a handshake whose client offers none of
 * them, so Istio's values are all here besides h2 and http/1.1: `istio-peer-exchange`, `istio` (TCP)
 * and `istio-http/1.0`, `istio-http/1.1`, `istio-h2` (pilot's allIstioMtlsALPNs). The server's order wins.
 */
export const MTLS_ALPN_PROTOCOLS = [
  'h2',
  'http/1.1',
  'istio-h2',
  'istio-http/1.1',
  'istio-http/1.0',
  'istio-peer-exchange',
  'istio',
]

/** Why a connection was refused; the listener counts each (admin /listeners). */
export type MtlsRefusal =
  | 'plaintext'
  | 'tls_without_istio_alpn'
  | 'no_client_certificate'
  | 'untrusted_client_certificate'
  | 'handshake_failed'
  | 'handshake_timeout'
  | 'no_workload_identity'

export interface MtlsHandlers {
  /** The handshake succeeded and the client certificate chains to the workload root. */
  secure(socket: TLSSocket): void
  refused(reason: MtlsRefusal, detail: string): void
}

/** A client that has not finished its handshake by then is disconnected (Envoy's transport_socket_connect_timeout is 15s in Istio). */
const HANDSHAKE_TIMEOUT_MS = 10_000

/** OpenSSL's verify errors for a certificate that does not chain to the trusted root. */
const untrustedCodes = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_CERTIFICATE_VERIFY_FAILED',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
])

function classify(error: Error & { code?: string }): MtlsRefusal {
  const code = error.code ?? ''
  const message = error.message
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || /did not return a certificate/i.test(message))
    return 'no_client_certificate'
  if (untrustedCodes.has(code) || /certificate verify failed|unknown ca|unable to get/i.test(message))
    return 'untrusted_client_certificate'
  return 'handshake_failed'
}

/**
 * One per proxy: follows the workload certificate (new handshakes use the newest files, connections
 * already open keep theirs) and handshakes each connection a listener hands it.
 */
export class MtlsTerminator {
  #context: SecureContext
  #credentials: WorkloadCredentials

  constructor(identity: WorkloadIdentity) {
    this.#credentials = identity.current
    this.#context = contextOf(identity.current)
    identity.onChange((credentials) => {
      this.#credentials = credentials
      this.#context = contextOf(credentials)
    })
  }

  /** The workload certificate new handshakes present. */
  get credentials(): WorkloadCredentials {
    return this.#credentials
  }

  /** Starts the server handshake on `socket` (paused, its first bytes still buffered). */
  accept(socket: Socket, handlers: MtlsHandlers): void {
    const tls = new TLSSocket(socket, {
      isServer: true,
      secureContext: this.#context,
      requestCert: true,
      // OpenSSL verifies the chain against the workload root and fails the handshake otherwise
      // (Envoy's require_client_certificate with the root as trusted_ca).
      rejectUnauthorized: true,
      ALPNProtocols: MTLS_ALPN_PROTOCOLS,
    })
    let settled = false
    const timer = setTimeout(() => {
      settle()
      handlers.refused('handshake_timeout', `no handshake within ${HANDSHAKE_TIMEOUT_MS} ms`)
      tls.destroy()
    }, HANDSHAKE_TIMEOUT_MS)
    const settle = (): void => {
      settled = true
      clearTimeout(timer)
      tls.off('error', onError)
    }
    const onError = (error: Error): void => {
      if (settled) return
      settle()
      handlers.refused(classify(error), error.message.trim())
      tls.destroy()
    }
    tls.on('error', onError)
    tls.once('secure', () => {
      if (settled) return
      settle()
      handlers.secure(tls)
    })
    tls.once('close', () => {
      if (settled) return
      settle()
      handlers.refused('handshake_failed', 'closed by the client during the handshake')
    })
  }
}

function contextOf(credentials: WorkloadCredentials): SecureContext {
  return createSecureContext({
    key: credentials.key,
    cert: credentials.certChain,
    ca: credentials.rootCert,
    minVersion: 'TLSv1.2',
  })
}
