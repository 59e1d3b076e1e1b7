// Go and protobuf duration strings (`100ms`, `0.5s`, `1m`, `1h2m`) read as milliseconds.

const NANOS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
}

const DURATION_PATTERN = /^(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/
const DURATION_PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g

/**
 * Parses a duration as Go's time.ParseDuration writes it (no sign; `0` alone is allowed) and returns
 * milliseconds, possibly fractional (`100us` is 0.1). Throws an Error whose message says what is wrong.
 */
export function parseDurationMs(text: string): number {
  if (text === '0') return 0
  if (!DURATION_PATTERN.test(text)) {
    throw new Error(
      `invalid duration '${text}': expected a number with a unit (ns, us, ms, s, m, h), e.g. 100ms, 1.5s, 1h2m`,
    )
  }
  let nanos = 0
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) {
    nanos += Math.round(Number(amount) * NANOS_PER_UNIT[unit])
  }
  return nanos / 1e6
}
