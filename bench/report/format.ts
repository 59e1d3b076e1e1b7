// Number formatting shared by the markdown and SVG writers.

/** 12345.6 → "12,346"; NaN → "—". */
export function int(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—'
  return Math.round(value).toLocaleString('en-US')
}

/** Fixed decimals; NaN → "—". */
export function fixed(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return '—'
  return value.toFixed(digits)
}

/** A ratio a/b as "0.42×"; "—" when either side is missing or b is not positive. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return '—'
  const r = a / b
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2)}×`
}

/** A signed microsecond difference: "+123 µs". */
export function signedUs(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—'
  return `${value >= 0 ? '+' : '−'}${int(Math.abs(value))} µs`
}
