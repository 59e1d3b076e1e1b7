// Who is on the other side of a request: the mTLS peer's SPIFFE identity and the JWT's principal, as Istio's authorization reads them.

/** What mTLS established about the peer of a connection (Istio's `source.principal` and `source.namespace`). */
export interface PeerIdentity {
  /** Istio's principal: the SPIFFE ID without `spiffe://`, e.g. `cluster.local/ns/default/sa/sleep`. */
  readonly principal: string
  /** The namespace in the SPIFFE ID (`/ns/<namespace>/`), or '' when it has none. */
  readonly namespace: string
  /** The trust domain (the SPIFFE ID's host part). */
  readonly trustDomain: string
}

/** What a RequestAuthentication (JWT) established about a request (Istio's `request.auth.*`). */
export interface RequestPrincipal {
  /** `<iss>/<sub>`: Istio's request principal (`requestPrincipals`, `request.auth.principal`). */
  readonly principal: string
  /** The token's `aud` values (`request.auth.audiences`). */
  readonly audiences: readonly string[]
  /** The token's `azp` (`request.auth.presenter`), or ''. */
  readonly presenter: string
  /** Every claim of the verified payload (`request.auth.claims[...]`). */
  readonly claims: Readonly<Record<string, unknown>>
}
