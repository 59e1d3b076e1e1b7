// What PeerAuthentication does with an inbound connection once its first bytes are read (pilot's inbound filter chain matches), and the peer an mTLS handshake established.

import { createHash, X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import type { ListenerServe } from '../config/model.ts'
import { type ConnectionPeer, peerIdentityOf } from '../protocol/connection-peer.ts'
import type { MtlsRefusal } from '../tls/mtls-terminator.ts'
import type { SniffMode } from './detect-connection.ts'
import type { Detection } from './detect-protocol.ts'

/** pilot/pkg/networking/core/listener.go allIstioMtlsALPNs: a ClientHello with one of them is mesh mTLS. */
export const ISTIO_MTLS_ALPNS: ReadonlySet<string> = new Set([
  'istio',
  'istio-peer-exchange',
  'istio-http/1.0',
  'istio-http/1.1',
  'istio-h2',
])

/** `terminate`: mTLS with the workload certificate; `plain`: served as without a policy; `passthrough`: the app's own TLS, as TCP. */
export type MtlsAction = 'terminate' | 'plain' | 'passthrough' | MtlsRefusal

/** How the first bytes are read under STRICT or PERMISSIVE: a ClientHello must be seen on every port. */
export function mtlsSniffMode(serve: ListenerServe): SniffMode {
  if (serve === 'http') return 'tls-or-http'
  if (serve === 'detect') return 'detect'
  return 'tls'
}

/**
 * pilot/pkg/networking/core/filterchain_options.go: STRICT takes TLS only (any ALPN) and terminates it;
 * PERMISSIVE terminates TLS that carries an Istio ALPN, keeps plain text plain, and passes other TLS
 * through as TCP, except on an HTTP port, where no filter chain takes it and the connection is closed.
 */
export function mtlsAction(
  mode: 'STRICT' | 'PERMISSIVE',
  serve: ListenerServe,
  detection: Detection,
  hasIdentity: boolean,
): MtlsAction {
  const hello = detection.clientHello
  if (hello === undefined) return mode === 'STRICT' ? 'plaintext' : 'plain'
  const istio = hello.alpn.some((p) => ISTIO_MTLS_ALPNS.has(p))
  if (mode === 'PERMISSIVE' && !istio) return serve === 'http' ? 'tls_without_istio_alpn' : 'passthrough'
  return hasIdentity ? 'terminate' : 'no_workload_identity'
}

/**
 * After termination on an undeclared port: a client whose sidecar saw TCP (it offered only
 * `istio-peer-exchange` or `istio`, so the server's ALPN order chose one of them) is TCP at once, as
 * Istio's chain for mtlsTCPWithMxcALPNs (a server-first protocol must not wait for bytes); otherwise the
 * decrypted bytes are sniffed as on a plain-text port.
 */
export function innerIsTcp(negotiated: string | false | null): boolean {
  return negotiated === 'istio' || negotiated === 'istio-peer-exchange'
}

/** The URI SANs in node's `subjectaltname` text, in order. */
function uriSans(text: string | undefined): string[] {
  if (text === undefined || text === '') return []
  return text
    .split(', ')
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4))
}

function dnsSans(text: string | undefined): string[] {
  if (text === undefined || text === '') return []
  return text
    .split(', ')
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4))
}

/**
 * The subject in RFC 2253 order (most specific first), as Envoy's subjectPeerCertificate prints it; empty
 * for Istio's workload certificates, whose subject is empty (node:crypto then gives undefined), hence
 * Istio's documented `Subject=""`.
 */
function rfc2253(subject: string | undefined): string {
  return subject === undefined || subject === '' ? '' : subject.split('\n').reverse().join(',')
}

/**
 * The peer and the XFCC element of an mTLS connection (Envoy's mutateXfccRequestHeader with Istio's
 * inbound set_current_client_cert_details {subject, uri, dns}): By, Hash, Subject, URI, then each DNS.
 */
export function connectionPeerOf(socket: TLSSocket): ConnectionPeer {
  const peer = socket.getPeerCertificate()
  const local = socket.getCertificate()
  const peerUri = uriSans(peer.subjectaltname)[0] ?? ''
  const by = uriSans(local !== null && 'subjectaltname' in local ? local.subjectaltname : undefined)[0]
  const parts: string[] = []
  if (by !== undefined) parts.push(`By=${by}`)
  parts.push(`Hash=${createHash('sha256').update(peer.raw).digest('hex')}`)
  // node gives no subject at all for an empty one (Istio's workload certificates, `outrigger ca issue`).
  parts.push(`Subject="${rfc2253(new X509Certificate(peer.raw).subject ?? '')}"`)
  parts.push(`URI=${peerUri}`)
  for (const dns of dnsSans(peer.subjectaltname)) parts.push(`DNS=${dns}`)
  const spiffe = uriSans(peer.subjectaltname).find((u) => u.startsWith('spiffe://'))
  return { identity: spiffe === undefined ? undefined : peerIdentityOf(spiffe), xfcc: parts.join(';') }
}
