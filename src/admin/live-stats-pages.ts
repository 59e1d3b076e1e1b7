// Admin's GET /live/stat and /live/history: this worker's live numbers merged with every other worker's (src/live/live-api.ts says the JSON).

import type { ServerResponse } from 'node:http'
import type { HistoryReport, LiveGrouping, StatReport } from '../live/live-api.ts'
import { parseGrouping, parseHistorySeconds, parseWindow } from '../live/live-query.ts'
import type { LiveStats } from '../live/live-stats.ts'
import type { HistoryQuery, HistorySnapshot, StatQuery, StatSnapshot } from '../live/stat-snapshot.ts'
import type { OtherWorkers } from './other-workers.ts'

/** Why the live pages answer 404 when bootstrap `live.enabled` is false. */
export const LIVE_OFF = 'the live view is off (bootstrap live.enabled: false)\n'

function sendJson(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function refuse(res: ServerResponse, status: number, reason: string): void {
  sendJson(res, status, reason, 'text/plain')
}

/** The proxy's StatReport for `by` over `windowSeconds`: this worker's snapshot and the others'. */
export async function liveStatReport(
  live: LiveStats,
  query: StatQuery,
  others: OtherWorkers | undefined,
): Promise<StatReport> {
  const own = live.snapshot(query.by, query.windowSeconds)
  const rest = others === undefined ? [] : ((await others.gather('live-stat', query)) as StatSnapshot[])
  // Loaded with the live view (hdr-histogram-js); a page asked while it is off answers 404 before this.
  const { statReport } = await import('../live/stat-report.ts')
  return statReport(query.by, own.windowSeconds, [own, ...rest], new Date())
}

/** The proxy's HistoryReport for `by` over the last `seconds`. */
export async function liveHistoryReport(
  live: LiveStats,
  query: HistoryQuery,
  others: OtherWorkers | undefined,
): Promise<HistoryReport> {
  const own = live.history(query.by, query.seconds)
  const rest = others === undefined ? [] : ((await others.gather('live-history', query)) as HistorySnapshot[])
  const { historyReport } = await import('../live/stat-report.ts')
  return historyReport(query.by, [own, ...rest])
}

/** A page parameter's reason for a 400. */
interface Refused {
  readonly refused: string
}

function isRefused<Q>(query: Q | Refused): query is Refused {
  return typeof query === 'object' && query !== null && 'refused' in query
}

/**
 * What both pages do: 404 when the live view is off, 400 on a bad `by` or on the reason `query` returns for
 * the page's own parameter, else the JSON of `report` (500 when merging the workers' answers failed).
 */
function answerLivePage<Q>(
  live: LiveStats | undefined,
  params: URLSearchParams,
  res: ServerResponse,
  query: (by: LiveGrouping) => Q | Refused,
  report: (live: LiveStats, query: Q) => Promise<StatReport | HistoryReport>,
): void {
  if (live === undefined) {
    refuse(res, 404, LIVE_OFF)
    return
  }
  const by = parseGrouping(params.get('by'))
  if (by === undefined) {
    refuse(res, 400, `by must be service, route, cluster or listener\n`)
    return
  }
  const q = query(by)
  if (isRefused(q)) {
    refuse(res, 400, q.refused)
    return
  }
  report(live, q).then(
    (body) => sendJson(res, 200, JSON.stringify(body), 'application/json'),
    (error: Error) => refuse(res, 500, `${error.message}\n`),
  )
}

/** GET /live/stat?by=service|route|cluster|listener&window=10s */
export function liveStatPage(
  live: LiveStats | undefined,
  params: URLSearchParams,
  res: ServerResponse,
  others: OtherWorkers | undefined,
): void {
  answerLivePage<StatQuery>(
    live,
    params,
    res,
    (by) => {
      const windowSeconds = parseWindow(params.get('window'))
      return windowSeconds === undefined
        ? { refused: 'window must be 1s to 60s (e.g. 10s)\n' }
        : { by, windowSeconds }
    },
    (stats, query) => liveStatReport(stats, query, others),
  )
}

/** GET /live/history?by=service|route|cluster|listener&seconds=N */
export function liveHistoryPage(
  live: LiveStats | undefined,
  params: URLSearchParams,
  res: ServerResponse,
  others: OtherWorkers | undefined,
): void {
  answerLivePage<HistoryQuery>(
    live,
    params,
    res,
    (by) => {
      const seconds = parseHistorySeconds(params.get('seconds'))
      return seconds === undefined ? { refused: 'seconds must be 1 to 600\n' } : { by, seconds }
    },
    (stats, query) => liveHistoryReport(stats, query, others),
  )
}
