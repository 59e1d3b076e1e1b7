// Envoy's slow start (DestinationRule warmup): an endpoint added to a running cluster ramps its weight up over the window.

import type { WarmupModel } from '../../config/model.ts'

/**
 * Envoy's applySlowStartFactor: the weight factor `elapsedMs` after the endpoint was added is
 * max(timeFactor^(1/aggression), minimum), with timeFactor = max(1 ms, elapsed) / window; 1 once
 * the window has passed.
 */
export function slowStartFactor(elapsedMs: number, warmup: WarmupModel): number {
  if (elapsedMs >= warmup.durationMs) return 1
  const timeFactor = Math.max(1, elapsedMs) / warmup.durationMs
  const aggression = warmup.aggression > 0 ? warmup.aggression : 1
  const ramped = aggression === 1 ? timeFactor : timeFactor ** (1 / aggression)
  return Math.max(ramped, warmup.minWeightFactor)
}
