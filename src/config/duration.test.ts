import { describe, expect, it } from 'vitest'
import { parseDurationMs } from './duration.ts'

describe('parseDurationMs', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['0.5s', 500],
    ['100ms', 100],
    ['1m', 60_000],
    ['1h2m', 3_720_000],
    ['1.1s', 1100],
    ['250us', 0.25],
    ['1500ns', 0.0015],
    ['2h45m30.5s', 9_930_500],
    ['.5s', 500],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms)
  })

  it.each(['', '5', '5x', '-1s', '1.5', 's', '1 s', '1s ', '1d'])('rejects %j with the reason', (text) => {
    expect(() => parseDurationMs(text)).toThrow(
      `invalid duration '${text}': expected a number with a unit (ns, us, ms, s, m, h), e.g. 100ms, 1.5s, 1h2m`,
    )
  })
})
