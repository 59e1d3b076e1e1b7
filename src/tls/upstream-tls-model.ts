// What the compiled model says about TLS a cluster originates to its endpoints (DestinationRule `tls`, or auto-mTLS).

/**
 * One cluster's client TLS settings, shared by the endpoints that use them. ISTIO_MUTUAL presents the
 * proxy's workload certificate and trusts its root; SIMPLE and MUTUAL use the DestinationRule's files.
 */
export interface UpstreamTlsModel {
  readonly mode: 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL'
  /** The SNI sent; '' sends none. ISTIO_MUTUAL defaults to the cluster name (`outbound_.<port>_.<subset>_.<host>`). */
  readonly sni: string
  /** The server must present one of these SANs (exact match); empty: any certificate the CA signed. */
  readonly subjectAltNames: readonly string[]
  /**
   * SIMPLE/MUTUAL without `sni` and `subjectAltNames`: the certificate must be valid for this host name
   * (Envoy's auto_san_validation checks the request's host; the service host stands for it). '' for none.
   */
  readonly verifyHost: string
  /** Accept any server certificate (insecureSkipVerify). */
  readonly insecureSkipVerify: boolean
  /** Absolute paths (SIMPLE/MUTUAL); caCertificates undefined: the system's roots. */
  readonly files: UpstreamTlsFiles
  /** ALPN offered by opaque TCP proxying (HTTP pools offer the protocol they speak, see `httpAlpn`). */
  readonly tcpAlpn: readonly string[]
  /** Set when auto-mTLS chose ISTIO_MUTUAL (no DestinationRule `tls`): only endpoints labelled `security.istio.io/tlsMode: istio` use it. */
  readonly autoDetected: boolean
  /** Equal for two models exactly when their connections would be configured alike (pool identity). */
  readonly key: string
}

export interface UpstreamTlsFiles {
  readonly clientCertificate: string | undefined
  readonly privateKey: string | undefined
  readonly caCertificates: string | undefined
  readonly caCrl: string | undefined
}

/**
 * The ALPN an HTTP request's upstream connection offers: what istio-proxy's ALPN filter sets for the
 * upstream protocol on every outbound HTTP connection manager (istio/istio pilot/pkg/xds/filters/filters.go
 * `mtlsHTTP11ALPN`, `mtlsHTTP2ALPN`; istio/proxy source/extensions/filters/http/alpn).
 */
export const httpAlpn = {
  http1: ['istio-http/1.1', 'istio', 'http/1.1'],
  http2: ['istio-h2', 'istio', 'h2'],
} as const satisfies Record<string, readonly string[]>

/**
 * ALPN of a TLS cluster without an HTTP connection manager in front (TCP proxy): ISTIO_MUTUAL offers
 * `ALPNInMeshWithMxc` (metadata exchange on, Istio's default) or `ALPNInMeshH2WithMxc` for an HTTP/2
 * cluster; SIMPLE/MUTUAL offer `h2` for an HTTP/2 cluster and nothing otherwise
 * (istio/istio pilot/pkg/networking/core/cluster_tls.go, pilot/pkg/networking/util/util.go).
 */
export function tcpAlpnFor(mode: UpstreamTlsModel['mode'], http2Cluster: boolean): readonly string[] {
  if (mode === 'ISTIO_MUTUAL')
    return http2Cluster ? ['istio-peer-exchange', 'istio', 'h2'] : ['istio-peer-exchange', 'istio']
  return http2Cluster ? ['h2'] : []
}

/** The label auto-mTLS reads on an endpoint (istio/api label `security.istio.io/tlsMode`). */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode'
