// Envoy's priority load: each level's health with the 1.4 overprovisioning factor, the share of requests it gets, and panic.

/** Envoy's default overprovisioning factor (140%): a level at 72% health (1/1.4) still takes all its load. */
export const OVERPROVISIONING_FACTOR = 140

/** Endpoint counts of one priority level. */
export interface LevelHealth {
  readonly total: number
  readonly healthy: number
}

export interface PriorityLoad {
  /** Percent of requests per level; the values sum to 100. */
  readonly load: readonly number[]
  /** Per level: balance over all its endpoints, ejected or not (Envoy's panic mode). */
  readonly panic: readonly boolean[]
  /** Per level: health in percent, overprovisioned and capped at 100 (what retries re-spread load by). */
  readonly health: readonly number[]
}

/** Envoy's per-level health: min(100, 1.4 × healthy / total), in whole percent. */
function levelHealth(level: LevelHealth): number {
  return level.total === 0
    ? 0
    : Math.min(100, Math.floor((OVERPROVISIONING_FACTOR * level.healthy) / level.total))
}

/**
 * Envoy's LoadBalancerBase::recalculatePerPriorityState and ...PerPriorityPanic. Levels take load in
 * order, each as much as its health allows; when their healths add up to less than 100 the loads are
 * scaled up so they still sum to 100. A level whose healthy share is below `panicThreshold` percent
 * is in panic; when every level is, load follows endpoint counts. With the threshold at 0 (panic
 * disabled, Istio's default) and nothing healthy, level 0 gets the load and no endpoint is picked.
 */
export function priorityLoad(levels: readonly LevelHealth[], panicThreshold: number): PriorityLoad {
  const health = levels.map(levelHealth)
  const panic = levels.map(() => false)
  const normalizedTotal = Math.min(
    100,
    health.reduce((sum, h) => sum + h, 0),
  )
  if (normalizedTotal === 0) {
    if (panicThreshold === 0) return { load: levels.map((_, i) => (i === 0 ? 100 : 0)), panic, health }
    return { load: loadByEndpointCount(levels), panic: levels.map(() => true), health }
  }
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]
    const healthyPercent = level.total === 0 ? 0 : (100 * level.healthy) / level.total
    panic[i] = healthyPercent < panicThreshold
  }
  if (panic.every(Boolean)) return { load: loadByEndpointCount(levels), panic, health }
  return { load: distributeLoad(health) ?? loadByEndpointCount(levels), panic, health }
}

/**
 * Envoy's distributeLoad: each level in order takes min(what is left, its health × 100 / total
 * health); rounding leftovers go to the first level with any health. Undefined when no level has any.
 */
export function distributeLoad(health: readonly number[]): number[] | undefined {
  const total = Math.min(
    100,
    health.reduce((sum, h) => sum + h, 0),
  )
  if (total === 0) return undefined
  const load = health.map(() => 0)
  let left = 100
  let first = -1
  for (let i = 0; i < health.length; i++) {
    if (health[i] > 0 && first === -1) first = i
    load[i] = Math.min(left, Math.floor((health[i] * 100) / total))
    left -= load[i]
  }
  load[first] += left
  return load
}

/**
 * Envoy's previous_priorities retry priority: the levels in `excluded` (a bit per level) get no load
 * and the rest is re-spread by health; when that leaves nothing, the exclusions are dropped and the
 * unmodified load is used.
 */
export function loadExcluding(health: readonly number[], excluded: number, original: readonly number[]) {
  const adjusted = health.map((h, i) => (excluded & (1 << i) ? 0 : h))
  return distributeLoad(adjusted) ?? original
}

/** Envoy's recalculateLoadInTotalPanic: load in proportion to endpoint counts, leftovers to the first. */
function loadByEndpointCount(levels: readonly LevelHealth[]): number[] {
  const total = levels.reduce((sum, l) => sum + l.total, 0)
  if (total === 0) return levels.map((_, i) => (i === 0 ? 100 : 0))
  const load = levels.map((l) => Math.floor((100 * l.total) / total))
  const first = levels.findIndex((l) => l.total > 0)
  load[first] += 100 - load.reduce((sum, n) => sum + n, 0)
  return load
}

/** The level a number in [0, 100) falls in, walking the loads in order. */
export function levelFor(load: readonly number[], point: number): number {
  let level = 0
  let upTo = load[0]
  while (point >= upTo && level < load.length - 1) upTo += load[++level]
  return level
}
