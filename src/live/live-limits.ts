// The live view's fixed sizes and groupings, in a module of their own so that reading a query loads no histogram code.

import type { LiveGrouping } from './live-api.ts'

/** Seconds of history a row keeps (the dashboard's charts; GET /live/history?seconds= at most this). */
export const HISTORY_SECONDS = 600

/** The longest window `outrigger stat` may ask, in seconds. */
export const WINDOW_SLOTS = 60

export const LIVE_GROUPINGS: readonly LiveGrouping[] = ['service', 'route', 'cluster', 'listener']
