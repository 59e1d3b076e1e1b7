// What `outrigger top` draws: the busiest paths as a table sorted by a chosen column and fitted to the terminal's width and height.

import type { TopRow } from '../live/live-api.ts'

/** The columns `top` sorts by, and the key that picks each. */
export type SortColumn = 'count' | 'success' | 'best' | 'worst' | 'last' | 'path' | 'authority' | 'method'

export const sortKeys: Readonly<Record<string, SortColumn>> = {
  c: 'count',
  s: 'success',
  b: 'best',
  w: 'worst',
  l: 'last',
  p: 'path',
  a: 'authority',
  m: 'method',
}

/** A sort column and whether it is reversed from that column's natural order. */
export interface SortOrder {
  readonly column: SortColumn
  readonly reversed: boolean
}

/**
 * Each column's natural order, the one its key picks first: the busiest, the least successful and the
 * slowest first (what an operator looks for), names alphabetically; the same key again reverses it.
 */
const natural: Readonly<Record<SortColumn, (a: TopRow, b: TopRow) => number>> = {
  count: (a, b) => b.count - a.count,
  success: (a, b) => a.successRate - b.successRate,
  best: (a, b) => b.latencyMs.best - a.latencyMs.best,
  worst: (a, b) => b.latencyMs.worst - a.latencyMs.worst,
  last: (a, b) => b.latencyMs.last - a.latencyMs.last,
  path: (a, b) => compareText(a.path, b.path),
  authority: (a, b) => compareText(a.authority, b.authority),
  method: (a, b) => compareText(a.method, b.method),
}

const arrow: Readonly<Record<SortColumn, string>> = {
  count: '↓',
  success: '↑',
  best: '↓',
  worst: '↓',
  last: '↓',
  path: '↑',
  authority: '↑',
  method: '↑',
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The order after pressing the key of `column`: that column in its natural order, or reversed if it was already chosen. */
export function nextSort(current: SortOrder, column: SortColumn): SortOrder {
  return current.column === column ? { column, reversed: !current.reversed } : { column, reversed: false }
}

/** How the header names a sort: `count ↓`. */
export function describeSort(order: SortOrder): string {
  const a = arrow[order.column]
  return `${order.column} ${order.reversed ? (a === '↓' ? '↑' : '↓') : a}`
}

/** `rows` sorted by `order`; ties by count, then path, so the table does not jitter between refreshes. */
export function sortRows(rows: readonly TopRow[], order: SortOrder): TopRow[] {
  const compare = natural[order.column]
  const sign = order.reversed ? -1 : 1
  return [...rows].sort(
    (a, b) =>
      sign * compare(a, b) ||
      b.count - a.count ||
      compareText(a.authority, b.authority) ||
      compareText(a.path, b.path) ||
      compareText(a.method, b.method) ||
      compareText(a.direction, b.direction),
  )
}

/** A latency for a narrow column: `850µs`, `12.3ms`, `450ms`, `1.25s`. */
export function formatLatency(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)}µs`
  if (ms < 100) return `${ms.toFixed(1)}ms`
  if (ms < 1000) return `${Math.round(ms)}ms`
  return `${(ms / 1000).toFixed(2)}s`
}

/** A count, prefixed `~` when Space-Saving's count is an estimate (the key was evicted once). */
function formatCount(row: TopRow): string {
  return `${row.countError > 0 ? '~' : ''}${row.count}`
}

function formatSuccess(rate: number): string {
  return `${(rate * 100).toFixed(2)}%`
}

/** `text` cut to `width` characters, ending in `…` when cut. */
export function cutTo(text: string, width: number): string {
  if (width <= 0) return ''
  if (text.length <= width) return text
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`
}

const GAP = '  '

interface Column {
  readonly title: string
  readonly right: boolean
  readonly cell: (row: TopRow) => string
}

const columns: readonly Column[] = [
  { title: 'DIR', right: false, cell: (r) => (r.direction === 'inbound' ? 'in' : 'out') },
  { title: 'METHOD', right: false, cell: (r) => r.method },
  { title: 'AUTHORITY', right: false, cell: (r) => r.authority },
  { title: 'PATH', right: false, cell: (r) => r.path },
  { title: 'COUNT', right: true, cell: formatCount },
  { title: 'SUCCESS', right: true, cell: (r) => formatSuccess(r.successRate) },
  { title: 'BEST', right: true, cell: (r) => formatLatency(r.latencyMs.best) },
  { title: 'WORST', right: true, cell: (r) => formatLatency(r.latencyMs.worst) },
  { title: 'LAST', right: true, cell: (r) => formatLatency(r.latencyMs.last) },
]
const AUTHORITY = 2
const PATH = 3
/** The authority column never takes more than this while the path is being cut. */
const AUTHORITY_SHARE = 0.3
const MIN_PATH = 8

/**
 * The table's lines (title line first), each at most `width` characters when `width` is given (the path
 * column is cut first, then the authority); without it (not a terminal) nothing is cut.
 */
export function tableLines(rows: readonly TopRow[], width?: number): string[] {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)))
  const widths = columns.map((c, i) =>
    Math.max(c.title.length, ...cells.map((row) => (row[i] as string).length)),
  )
  if (width !== undefined) {
    const total = () => widths.reduce((s, w) => s + w, 0) + GAP.length * (widths.length - 1)
    let over = total() - width
    if (over > 0) {
      const authorityCap = Math.max(
        columns[AUTHORITY]?.title.length ?? 0,
        Math.floor(width * AUTHORITY_SHARE),
      )
      const authority = widths[AUTHORITY] as number
      if (authority > authorityCap) {
        widths[AUTHORITY] = Math.max(authorityCap, authority - over)
        over = total() - width
      }
      if (over > 0) widths[PATH] = Math.max(MIN_PATH, (widths[PATH] as number) - over)
    }
  }
  const line = (texts: readonly string[]): string => {
    const text = texts
      .map((t, i) => {
        const w = widths[i] as number
        const cut = cutTo(t, w)
        return columns[i]?.right ? cut.padStart(w) : cut.padEnd(w)
      })
      .join(GAP)
      .trimEnd()
    return width === undefined ? text : cutTo(text, width)
  }
  return [line(columns.map((c) => c.title)), ...cells.map(line)]
}

/** What the screen shows besides the table. */
export interface ScreenState {
  readonly admin: string
  readonly windowSeconds: number
  /** When the shown rows were fetched, or undefined before the first answer. */
  readonly refreshedAt: Date | undefined
  /** Why the last fetch failed (shown in the header; top keeps retrying), or undefined. */
  readonly error: string | undefined
  readonly sort: SortOrder
  readonly rows: readonly TopRow[]
}

export const footer =
  'c count  s success  b best  w worst  l last  p path  a authority  m method  (again: reverse)  q quit'

/** The whole screen: a header line, a blank line, the table cut to fit `height`, and the footer on the last line. */
export function screenLines(state: ScreenState, width: number, height: number): string[] {
  const refreshed = state.refreshedAt === undefined ? 'never' : state.refreshedAt.toLocaleTimeString('en-GB')
  // An error comes first (it names the admin), so a narrow terminal still shows it.
  const source = state.error === undefined ? `admin ${state.admin}` : `ERROR ${state.error} (retrying)`
  const header = `outrigger top  ${source}  window ${state.windowSeconds}s  refreshed ${refreshed}  sort ${describeSort(state.sort)}`
  const tableRoom = Math.max(0, height - 3)
  const rows = sortRows(state.rows, state.sort)
  const table = tableLines(rows.slice(0, Math.max(0, tableRoom - 1)), width).slice(0, tableRoom)
  const lines = [cutTo(header, width), '', ...table]
  while (lines.length < height - 1) lines.push('')
  lines.push(cutTo(footer, width))
  return lines.slice(0, height)
}
