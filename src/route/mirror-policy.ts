// A route's compiled request mirroring: the shadow clusters that get fire-and-forget copies, each with its odds.

export interface MirrorPolicy {
  readonly clusterName: string
  /** Percent of requests mirrored, 0..100. */
  readonly percent: number
}

/** Envoy's shadow authority: `-shadow` appended to the host, before any port. */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(':')
  const bracket = authority.lastIndexOf(']')
  if (colon === -1 || colon < bracket) return `${authority}-shadow`
  return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`
}
