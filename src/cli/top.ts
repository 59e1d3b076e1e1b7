// `outrigger top [--admin host:port] [--window 10s] [--limit N]`: a live terminal view of a running proxy's busiest paths (Linkerd's `viz top`), read from admin /live/top.

import { parseArgs } from 'node:util'
import { parseDurationMs } from '../config/duration.ts'
import type { TopReport } from '../live/live-api.ts'
import {
  type AdminAddress,
  adminAuthority,
  defaultAdmin,
  getAdmin,
  parseAdminAddress,
} from './admin-client.ts'
import {
  nextSort,
  type ScreenState,
  type SortOrder,
  screenLines,
  sortKeys,
  sortRows,
  tableLines,
} from './top-screen.ts'

export interface TopOptions {
  /** The proxy's admin API (default 127.0.0.1:15000). */
  readonly admin: AdminAddress
  readonly window: string
  /** At most this many rows (default: what the screen holds). */
  readonly limit: number | undefined
}

const REFRESH_MS = 1000
const FETCH_TIMEOUT_MS = 2000
/** Rows asked of admin so a sort by another column sees the whole table (its capacity). */
const ALL_ROWS = 200

const ESC = '\x1b['
const enterScreen = `${ESC}?1049h${ESC}?25l`
const leaveScreen = `${ESC}?25h${ESC}?1049l`
const CTRL_C = '\x03'

/** Asks admin for the report; throws an Error whose message the header shows. */
async function fetchReport(options: TopOptions, signal: AbortSignal): Promise<TopReport> {
  const limit = options.limit ?? ALL_ROWS
  const path = `/live/top?window=${encodeURIComponent(options.window)}&limit=${limit}`
  const answer = await getAdmin(options.admin, path, { signal, timeoutMs: FETCH_TIMEOUT_MS })
  if (answer.status !== 200)
    throw new Error(`admin ${adminAuthority(options.admin)} answered ${answer.status}: ${answer.body.trim()}`)
  return JSON.parse(answer.body) as TopReport
}

/** `outrigger top`'s flags; exit 2 on a bad one. */
export function top(args: readonly string[]): Promise<number> {
  let values: { admin?: string; window?: string; limit?: string }
  try {
    values = parseArgs({
      args: [...args],
      options: { admin: { type: 'string' }, window: { type: 'string' }, limit: { type: 'string' } },
    }).values
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    return Promise.resolve(2)
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit)
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    process.stderr.write('--limit must be a whole number ≥ 1\n')
    return Promise.resolve(2)
  }
  const admin = parseAdminAddress(values.admin ?? defaultAdmin)
  if (admin === undefined) {
    process.stderr.write(`--admin must be host:port, not ${values.admin}\n`)
    return Promise.resolve(2)
  }
  return topView({ admin, window: values.window ?? '10s', limit })
}

/** Exit codes: 0 after `q`, Ctrl-C or a signal (or a snapshot printed), 1 when a snapshot could not be had, 2 on bad flags. */
async function topView(options: TopOptions): Promise<number> {
  let windowSeconds: number
  try {
    windowSeconds = parseDurationMs(options.window) / 1000
  } catch (err) {
    process.stderr.write(`--window: ${(err as Error).message}\n`)
    return 2
  }
  if (windowSeconds <= 0) {
    process.stderr.write('--window must be above 0\n')
    return 2
  }
  if (!process.stdout.isTTY) return snapshot(options)
  return new LiveView(options, windowSeconds).run()
}

/** Not a terminal (`outrigger top | cat`): one table, busiest first, nothing cut, and exit. */
async function snapshot(options: TopOptions): Promise<number> {
  try {
    const report = await fetchReport(options, new AbortController().signal)
    const rows = sortRows(report.rows, { column: 'count', reversed: false })
    process.stdout.write(`${tableLines(rows).join('\n')}\n`)
    return 0
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    return 1
  }
}

/** The full-screen view: alternate screen, cursor hidden, raw keys; every exit path restores the terminal. */
class LiveView {
  readonly #options: TopOptions
  readonly #stop = new AbortController()
  #state: ScreenState
  #timer: NodeJS.Timeout | undefined
  #done: (code: number) => void = () => {}

  constructor(options: TopOptions, windowSeconds: number) {
    this.#options = options
    this.#state = {
      admin: adminAuthority(options.admin),
      windowSeconds,
      refreshedAt: undefined,
      error: undefined,
      sort: { column: 'count', reversed: false },
      rows: [],
    }
  }

  run(): Promise<number> {
    const finished = new Promise<number>((resolve) => {
      this.#done = resolve
    })
    const stdin = process.stdin
    process.stdout.write(enterScreen)
    stdin.setRawMode?.(true)
    stdin.setEncoding('utf8')
    stdin.on('data', this.#onKeys)
    stdin.resume()
    process.stdout.on('resize', this.#draw)
    process.on('SIGINT', this.#quit)
    process.on('SIGTERM', this.#quit)
    process.on('SIGHUP', this.#quit)
    this.#draw()
    void this.#refresh()
    return finished
  }

  #onKeys = (keys: string): void => {
    for (const key of keys) {
      if (key === 'q' || key === 'Q' || key === CTRL_C) {
        this.#quit()
        return
      }
      const column = sortKeys[key]
      if (column !== undefined) this.#sort(nextSort(this.#state.sort, column))
    }
  }

  #sort(sort: SortOrder): void {
    this.#state = { ...this.#state, sort }
    this.#draw()
  }

  async #refresh(): Promise<void> {
    try {
      const report = await fetchReport(this.#options, this.#stop.signal)
      this.#state = {
        ...this.#state,
        windowSeconds: report.windowSeconds,
        refreshedAt: new Date(report.at),
        error: undefined,
        rows: report.rows,
      }
    } catch (err) {
      if (this.#stop.signal.aborted) return
      // The last rows stay on screen under the error; the next refresh tries again.
      this.#state = { ...this.#state, error: (err as Error).message }
    }
    if (this.#stop.signal.aborted) return
    this.#draw()
    this.#timer = setTimeout(() => void this.#refresh(), REFRESH_MS)
  }

  #draw = (): void => {
    const width = process.stdout.columns ?? 80
    const height = process.stdout.rows ?? 24
    const lines = screenLines(this.#state, width, height)
    // Home, each line over the old one (erasing its rest), then erase below: no flicker of a full clear.
    process.stdout.write(`${ESC}H${lines.join(`${ESC}K\r\n`)}${ESC}K${ESC}J`)
  }

  #quit = (): void => {
    if (this.#stop.signal.aborted) return
    this.#stop.abort()
    clearTimeout(this.#timer)
    const stdin = process.stdin
    stdin.off('data', this.#onKeys)
    stdin.setRawMode?.(false)
    stdin.pause()
    process.stdout.off('resize', this.#draw)
    process.off('SIGINT', this.#quit)
    process.off('SIGTERM', this.#quit)
    process.off('SIGHUP', this.#quit)
    process.stdout.write(leaveScreen, () => this.#done(0))
  }
}
