// Small statistics helpers: the median of runs, and rounding for reports.

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The per-field median of numeric records: each metric's median taken on its own. */
export function medianRecord<T extends object>(runs: readonly T[]): T {
  const first = runs[0]
  const out: Record<string, number> = {}
  for (const key of Object.keys(first)) {
    out[key] = median(runs.map((r) => (r as Record<string, number>)[key]))
  }
  return out as T
}

/** Rounds to `digits` significant digits (for JSON output that stays readable). */
export function sig(value: number, digits = 4): number {
  if (!Number.isFinite(value) || value === 0) return value
  return Number(value.toPrecision(digits))
}

/** The order of `items` for round `round`: rotated so no system always runs first (A B C, B C A, …). */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = items.length === 0 ? 0 : round % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}
