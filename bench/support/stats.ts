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

/** Student's t at 97.5 % (two-sided 95 %) for 1..30 degrees of freedom; past 30, 2.0. */
const T_975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
]

/** The mean of `values` and its 95 % confidence interval (Student's t; the rounds taken as independent). */
export function meanWithInterval(values: readonly number[]): { mean: number; low: number; high: number } {
  const n = values.length
  const mean = values.reduce((a, b) => a + b, 0) / n
  if (n < 2) return { mean, low: mean, high: mean }
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)
  const half = (T_975[n - 2] ?? 2.0) * Math.sqrt(variance / n)
  return { mean, low: mean - half, high: mean + half }
}
