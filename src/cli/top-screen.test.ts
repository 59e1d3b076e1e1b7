// Unit tests of top's screen: sort keys and their reversal, latency formats, the table fitted to width and height.

import { describe, expect, it } from 'vitest'
import type { TopRow } from '../live/live-api.ts'
import {
  cutTo,
  describeSort,
  formatLatency,
  nextSort,
  type ScreenState,
  screenLines,
  sortRows,
  tableLines,
} from './top-screen.ts'

function row(path: string, count: number, successRate: number, worst: number, authority = 'app'): TopRow {
  return {
    direction: 'inbound',
    method: 'GET',
    authority,
    path,
    count,
    countError: 0,
    successRate,
    latencyMs: { best: 1, worst, last: 2 },
  }
}

const rows = [row('/b', 5, 1, 30), row('/a', 9, 0.5, 10), row('/c', 1, 0.9, 90)]

describe('top screen', () => {
  it('sorts by the chosen column in its natural order, and reverses on the same key', () => {
    const paths = (order: Parameters<typeof sortRows>[1]) => sortRows(rows, order).map((r) => r.path)
    expect(paths({ column: 'count', reversed: false })).toEqual(['/a', '/b', '/c'])
    expect(paths({ column: 'success', reversed: false })).toEqual(['/a', '/c', '/b'])
    expect(paths({ column: 'worst', reversed: false })).toEqual(['/c', '/b', '/a'])
    expect(paths({ column: 'path', reversed: false })).toEqual(['/a', '/b', '/c'])
    const again = nextSort({ column: 'path', reversed: false }, 'path')
    expect(again).toEqual({ column: 'path', reversed: true })
    expect(paths(again)).toEqual(['/c', '/b', '/a'])
    expect(nextSort(again, 'count')).toEqual({ column: 'count', reversed: false })
    expect(describeSort({ column: 'count', reversed: false })).toBe('count ↓')
    expect(describeSort({ column: 'count', reversed: true })).toBe('count ↑')
    expect(describeSort({ column: 'path', reversed: false })).toBe('path ↑')
  })

  it('formats latencies for a narrow column', () => {
    expect(formatLatency(0.25)).toBe('250µs')
    expect(formatLatency(12.34)).toBe('12.3ms')
    expect(formatLatency(450.4)).toBe('450ms')
    expect(formatLatency(1250)).toBe('1.25s')
  })

  it('cuts the path column first, then the authority, to fit the width', () => {
    const long = [row(`/${'p'.repeat(100)}`, 3, 1, 1, 'a'.repeat(60))]
    const wide = tableLines(long)
    expect(wide[1]).toContain('p'.repeat(100))
    const lines = tableLines(long, 100)
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100)
    expect(lines[1]).toContain('…')
    // The authority keeps up to 30 % of the width; the path takes what is left.
    expect(lines[1]).toContain(`${'a'.repeat(29)}…`)
    expect(cutTo('abcdef', 4)).toBe('abc…')
    expect(cutTo('abc', 4)).toBe('abc')
  })

  it('fills the height: header, blank, titles, the rows that fit, footer last', () => {
    const state: ScreenState = {
      admin: '127.0.0.1:15000',
      windowSeconds: 10,
      refreshedAt: undefined,
      error: 'admin 127.0.0.1:15000 unreachable: ECONNREFUSED',
      sort: { column: 'count', reversed: false },
      rows,
    }
    const lines = screenLines(state, 120, 6)
    expect(lines).toHaveLength(6)
    expect(lines[0]).toContain('refreshed never')
    expect(lines[0]).toContain('ERROR admin 127.0.0.1:15000 unreachable: ECONNREFUSED (retrying)')
    expect(lines[2]).toMatch(/^DIR/)
    expect(lines.slice(3, 5).map((l) => l.split(/\s+/)[3])).toEqual(['/a', '/b'])
    expect(lines[5]).toMatch(/^c count/)
    const tall = screenLines(state, 120, 20)
    expect(tall).toHaveLength(20)
    expect(tall.filter((l) => l.startsWith('in ')).length).toBe(3)
  })
})
