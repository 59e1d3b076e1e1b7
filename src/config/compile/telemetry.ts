// The TelemetryPolicy of this workload: the bootstrap's `telemetry` block as Istio's mesh default.

import type { Bootstrap } from '../../bootstrap/schema.ts'
import { meshTelemetryPolicy, type TelemetryPolicy } from '../../telemetry/telemetry-policy.ts'

export function compileTelemetry(bootstrap: Bootstrap): TelemetryPolicy {
  return meshTelemetryPolicy(bootstrap.telemetry)
}
