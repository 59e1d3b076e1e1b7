// The bootstrap's `live` block: the live view (`outrigger stat|top|tap`, the admin dashboard) and what it keeps.

import { z } from 'zod'

/**
 * `live.enabled` keeps the windowed request rates, success rates and latencies per service, route,
 * cluster and listener, and the busiest paths, that `outrigger stat`, `outrigger top` and the dashboard's
 * charts read from admin. Off by default: under 3 % of CPU per request at 1000 req/s, but 2 to 5 % of saturated
 * throughput and 6.7 MiB of RSS in every pod (docs/live.md), as
 * Envoy keeps no such numbers unless asked. Off, those observers are not registered and the pages answer
 * 404 (the dashboard then draws rates from Envoy's counters).
 * `outrigger tap` does not depend on it: a tap costs only while one is attached.
 */
export const liveSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
  })
  .default({ enabled: false })

export type LiveSettings = z.infer<typeof liveSchema>
