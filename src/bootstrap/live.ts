// The bootstrap's `live` block: the live view (`outrigger stat|top|tap`, the admin dashboard) and what it keeps.

import { z } from 'zod'

/**
 * `live.enabled` (default true) keeps the windowed request rates, success rates and latencies per service,
 * route, cluster and listener, and the busiest paths, that `outrigger stat`, `outrigger top` and the
 * dashboard read from admin. Off, those observers are not registered and the pages answer 404.
 * `outrigger tap` does not depend on it: a tap costs only while one is attached.
 */
export const liveSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
  })
  .default({ enabled: true })

export type LiveSettings = z.infer<typeof liveSchema>
