// Envoy's %RESPONSE_FLAGS% short names, which access logs and Istio's `response_flags` label carry.

export const ResponseFlag = {
  NoHealthyUpstream: 'UH',
  UpstreamConnectionFailure: 'UF',
  UpstreamOverflow: 'UO',
  NoRouteFound: 'NR',
  UpstreamRetryLimitExceeded: 'URX',
  NoClusterFound: 'NC',
  DownstreamConnectionTermination: 'DC',
  UpstreamRequestTimeout: 'UT',
  LocalReset: 'LR',
  UpstreamRemoteReset: 'UR',
  UpstreamConnectionTermination: 'UC',
  DelayInjected: 'DI',
  FaultInjected: 'FI',
  RateLimited: 'RL',
  DownstreamProtocolError: 'DPE',
  UpstreamProtocolError: 'UPE',
} as const

export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag]

/** `-` when no flag is set, else the flags joined by commas, as Envoy prints them. */
export function formatResponseFlags(flags: readonly ResponseFlag[]): string {
  return flags.length === 0 ? '-' : flags.join(',')
}
