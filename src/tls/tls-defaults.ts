// The TLS protocol floor, cipher suites and curves every TLS server and client of the proxy uses unless a resource sets its own.

import { constants } from 'node:crypto'
import type { SecureContextOptions } from 'node:tls'

/**
 * TLS 1.2 and 1.3 only, as Istio's mesh mTLS (MeshConfig `meshMTLS.minProtocolVersion` defaults to TLSv1_2)
 * and Envoy's contexts (context_config_impl.cc DEFAULT_MIN_VERSION).
 */
export const TLS_MIN_VERSION = 'TLSv1.2'

/**
 * Forward-secret AEAD suites only: the TLS 1.3 suites, then Envoy's default TLS 1.2 list in non-FIPS builds
 * (source/common/tls/context_config_impl.cc DEFAULT_CIPHER_SUITES: ECDHE with AES-GCM or ChaCha20-Poly1305).
 * node's own default adds CBC suites (`HIGH`, ECDHE-*-SHA256/384) that testssl.sh reports.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
].join(':')

/** Envoy's default curves (context_config_impl.cc DEFAULT_CURVES). */
export const TLS_ECDH_CURVES = 'X25519:P-256'

/**
 * No TLS 1.2 renegotiation on a server: BoringSSL (Envoy) never accepts a client's. node's own limit
 * (3 in 10 minutes, tls.CLIENT_RENEG_LIMIT) still lets a client make the server redo handshakes
 * (testssl.sh secure_client_renego); with this option OpenSSL ignores the request.
 */
export const TLS_SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION

/** The options above, for a secure context that sets none of its own. */
export const MODERN_TLS: Readonly<
  Required<Pick<SecureContextOptions, 'minVersion' | 'ciphers' | 'ecdhCurve' | 'secureOptions'>>
> = {
  minVersion: TLS_MIN_VERSION,
  ciphers: TLS_CIPHERS,
  ecdhCurve: TLS_ECDH_CURVES,
  secureOptions: TLS_SECURE_OPTIONS,
}

/**
 * A client that has not finished its handshake by then is closed: Envoy's default
 * `listener_filters_timeout` (15 s, api/envoy/config/listener/v3/listener.proto), the time its
 * tls_inspector waits for a ClientHello. Istio sets that timeout to 0s on its inbound listeners and
 * leaves `transport_socket_connect_timeout` unset, so a stalled handshake holds its connection there;
 * a Node process pays a socket and TLS state for each, so it gets Envoy's own bound.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 15_000
