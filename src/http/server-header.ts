// The `server` response header as Istio configures Envoy's connection manager: server_name, OVERWRITE.

import type { TrafficDirection } from '../config/model.ts'

/**
 * Istio's ProxyHeaders (pilot/pkg/networking/util/proxy_headers.go): server_header_transformation
 * OVERWRITE on every sidecar listener, server_name `istio-envoy` inbound and unset (Envoy's default
 * `envoy`) outbound. Envoy's ActiveStream::encodeHeaders applies it to every response, the upstream's
 * and its own local replies alike, after the filters' response phase.
 */
const SERVER_NAMES: Readonly<Record<TrafficDirection, string>> = {
  inbound: 'istio-envoy',
  outbound: 'envoy',
}

/** Replaces any `server` field in `headers` (a flat name/value list) with the listener's server name. */
export function overwriteServerHeader(headers: string[], direction: TrafficDirection): void {
  const value = SERVER_NAMES[direction]
  let found = false
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]
    if (name.length !== 6 || name.toLowerCase() !== 'server') continue
    if (found) {
      headers.splice(i, 2)
      i -= 2
      continue
    }
    headers[i + 1] = value
    found = true
  }
  if (!found) headers.push('server', value)
}
