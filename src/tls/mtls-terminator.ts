// Terminates Istio mTLS on inbound connections with the workload certificate: the client must present a certificate that chains to the workload root.

import type { Socket } from 'node:net'
import { createServer, type SecureContextOptions, type TLSSocket, type Server as TlsServer } from 'node:tls'
import { MODERN_TLS, TLS_HANDSHAKE_TIMEOUT_MS } from './tls-defaults.ts'
import type { WorkloadCredentials, WorkloadIdentity } from './workload-identity.ts'

/**
 * Protocols the server side accepts by ALPN. node:tls ends a handshake whose client offers none of
 * them, so Istio's values are all here besides h2 and http/1.1: `istio-peer-exchange`, `istio` (TCP)
 * and `istio-http/1.0`, `istio-http/1.1`, `istio-h2` (pilot's allIstioMtlsALPNs). The server's order
 * wins, so a client that offers an HTTP value gets one, and only a client whose sidecar saw TCP gets
 * `istio-peer-exchange` or `istio`.
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

/**
 * node:tls's ALPN selection with the server's preference, as `ALPNProtocols: MTLS_ALPN_PROTOCOLS` selects
 * (OpenSSL's SSL_select_next_proto; none in common ends the handshake with a fatal alert, as undefined
 * does here). A callback rather than the list: node copies a server's ALPN list into every TLSSocket's
 * options (convertALPNProtocols, from the Buffer pool), and those few-byte copies kept whole 64 KiB pool
 * slabs (node 24's Buffer.poolSize) alive: 1.7 KiB per idle mTLS connection in the snapshot diff,
 * bench/results/connection-heap-2026-12-07.md.
 */
export function selectMtlsAlpn({ protocols }: { protocols: string[] }): string | undefined {
  for (const protocol of MTLS_ALPN_PROTOCOLS) if (protocols.includes(protocol)) return protocol
  return undefined
}

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
  /** The connection is closed after this; `socket` is the refused connection (for its address). */
  refused(reason: MtlsRefusal, detail: string, socket: Socket): void
}

function classify(error: Error & { code?: string }): MtlsRefusal {
  if (error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout'
  return 'handshake_failed'
}

/**
 * One per proxy: holds the workload certificate as it rotates. Each listener that takes mTLS gets its
 * own MtlsPort, which picks up a new certificate at its next handshake (open connections keep theirs).
 */
export class MtlsTerminator {
  #credentials: WorkloadCredentials
  #generation = 0

  constructor(identity: WorkloadIdentity) {
    this.#credentials = identity.current
    identity.onChange((credentials) => {
      this.#credentials = credentials
      this.#generation++
    })
  }

  /** The workload certificate new handshakes present. */
  get credentials(): WorkloadCredentials {
    return this.#credentials
  }

  /** Bumped by every certificate change. */
  get generation(): number {
    return this.#generation
  }

  /** A listener's mTLS termination; `handlers` serve or refuse each of its connections. */
  port(handlers: MtlsHandlers): MtlsPort {
    return new MtlsPort(this, handlers)
  }
}

/** A node:tls server that never listens: it handshakes the connections one listener hands it. */
export class MtlsPort {
  readonly #terminator: MtlsTerminator
  readonly #handlers: MtlsHandlers
  readonly #server: TlsServer
  #generation: number

  constructor(terminator: MtlsTerminator, handlers: MtlsHandlers) {
    this.#terminator = terminator
    this.#handlers = handlers
    this.#generation = terminator.generation
    this.#server = createServer({
      ...contextOptions(terminator.credentials),
      requestCert: true,
      // Checked in #onSecure, so that each refusal is told apart and counted.
      rejectUnauthorized: false,
      ALPNCallback: selectMtlsAlpn,
      handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    })
    this.#server.on('secureConnection', this.#onSecure)
    this.#server.on('tlsClientError', this.#onClientError)
  }

  /** Starts the server handshake on `socket` (paused, its first bytes still buffered). */
  accept(socket: Socket): void {
    const terminator = this.#terminator
    if (this.#generation !== terminator.generation) {
      this.#generation = terminator.generation
      this.#server.setSecureContext(contextOptions(terminator.credentials))
    }
    this.#server.emit('connection', socket)
  }

  /**
   * Envoy's require_client_certificate with the workload root as trusted CA: a client without a
   * certificate, or with one that does not chain to the root, is closed.
   */
  readonly #onSecure = (socket: TLSSocket): void => {
    if (!socket.authorized) {
      const certificate = socket.getPeerCertificate()
      const presented = certificate !== null && Object.keys(certificate).length > 0
      this.#handlers.refused(
        presented ? 'untrusted_client_certificate' : 'no_client_certificate',
        String(socket.authorizationError ?? ''),
        socket,
      )
      socket.destroy()
      return
    }
    this.#handlers.secure(socket)
  }

  readonly #onClientError = (error: Error, socket: TLSSocket): void => {
    this.#handlers.refused(classify(error), error.message.trim(), socket)
    socket.destroy()
  }
}

/** The secure context of every mTLS port (bench/support/tls-scan-target.ts serves it for testssl.sh). */
export function contextOptions(credentials: WorkloadCredentials): SecureContextOptions {
  return {
    key: credentials.key,
    cert: credentials.certChain,
    ca: credentials.rootCert,
    ...MODERN_TLS,
  }
}
