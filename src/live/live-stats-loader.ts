// Loads the live view's observer, and with it hdr-histogram-js (about 6.7 MiB of a sidecar's RSS), only when bootstrap `live.enabled` asks for it.

import type { LiveStats } from './live-stats.ts'

/** A LiveStats for `<canonical service>.<namespace>`; the runtime calls it once, at start, before any traffic. */
export async function loadLiveStats(inboundService: string): Promise<LiveStats> {
  const { LiveStats } = await import('./live-stats.ts')
  return new LiveStats({ inboundService })
}
