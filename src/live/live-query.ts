// The live pages' query words: which grouping (`by`) and how long a window (`10s`), read the same by admin and `outrigger stat`.

import type { LiveGrouping } from './live-api.ts'
import { HISTORY_SECONDS, LIVE_GROUPINGS, WINDOW_SLOTS } from './live-limits.ts'

export const DEFAULT_WINDOW_SECONDS = 10

export function parseGrouping(text: string | null | undefined): LiveGrouping | undefined {
  if (text === null || text === undefined || text === '') return 'service'
  return LIVE_GROUPINGS.find((g) => g === text)
}

/** Seconds of a duration written `10`, `10s` or `1m`, whole seconds only; undefined when it is not one. */
function parseSeconds(text: string): number | undefined {
  const match = /^(\d+)(s|m)?$/.exec(text)
  if (match === null) return undefined
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1)
}

/** A stat window, 1 s to 60 s (the ring's length); undefined when out of range or not a duration. */
export function parseWindow(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined || text === '') return DEFAULT_WINDOW_SECONDS
  const seconds = parseSeconds(text)
  return seconds !== undefined && seconds >= 1 && seconds <= WINDOW_SLOTS ? seconds : undefined
}

/** A history span, 1 s to the ten minutes kept (default all of them); undefined when out of range. */
export function parseHistorySeconds(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined || text === '') return HISTORY_SECONDS
  const seconds = parseSeconds(text)
  return seconds !== undefined && seconds >= 1 && seconds <= HISTORY_SECONDS ? seconds : undefined
}
