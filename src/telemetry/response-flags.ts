// Envoy's %RESPONSE_FLAGS% short names, which access logs and Istio's `response_flags` label carry.

export const ResponseFlag = {
  NoHealthyUpstream: 'UH',
  UpstreamConnectionFailure: 'UF',
  UpstreamOverflow: 'UO',
  NoRouteFound: 'NR',
  UpstreamRetryLimitExceeded: 'URX',
  StreamIdleTimeout: 'SI',
  NoClusterFound: 'NC',
  DownstreamConnectionTermination: 'DC',
  DownstreamRemoteReset: 'DR',
  UpstreamRequestTimeout: 'UT',
  LocalReset: 'LR',
  UpstreamRemoteReset: 'UR',
  UpstreamConnectionTermination: 'UC',
  DelayInjected: 'DI',
  FaultInjected: 'FI',
  RateLimited: 'RL',
  DownstreamProtocolError: 'DPE',
  UpstreamProtocolError: 'UPE',
  OverloadManager: 'OM',
} as const

export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag]

/**
 * Each flag's bit in Envoy's legacy response-flag mask (envoy/stream_info/stream_info.h, ResponseFlag:
 * FailedLocalHealthCheck = 0x1 … NoClusterFound = 0x1000000). Envoy prints set flags in this order,
 * whatever order they were set in (ResponseFlagUtils::toShortString walks its table), and CEL's
 * `response.flags` is this mask.
 */
export const responseFlagBits: Readonly<Record<ResponseFlag, number>> = {
  UH: 0x2,
  UT: 0x4,
  LR: 0x8,
  UR: 0x10,
  UF: 0x20,
  UC: 0x40,
  UO: 0x80,
  NR: 0x100,
  DI: 0x200,
  FI: 0x400,
  RL: 0x800,
  DC: 0x4000,
  URX: 0x8000,
  SI: 0x10000,
  DPE: 0x40000,
  UPE: 0x800000,
  NC: 0x1000000,
  OM: 0x2000000,
  // CoreResponseFlag::DownstreamRemoteReset (28), after NoClusterFound (24) and the overload and DNS flags.
  DR: 0x10000000,
}

function byEnvoyOrder(a: ResponseFlag, b: ResponseFlag): number {
  return responseFlagBits[a] - responseFlagBits[b]
}

/** `-` when no flag is set, else the flags joined by commas in Envoy's order (`UF,URX`, `DI,FI`). */
export function formatResponseFlags(flags: readonly ResponseFlag[]): string {
  if (flags.length === 0) return '-'
  if (flags.length === 1) return flags[0]
  return [...flags].sort(byEnvoyOrder).join(',')
}

/** The flags as Envoy's legacy bit mask (CEL `response.flags`). */
export function responseFlagMask(flags: readonly ResponseFlag[]): number {
  let mask = 0
  for (const flag of flags) mask |= responseFlagBits[flag]
  return mask
}
