// Admin GET /live/top?window=10s&limit=N: the busiest paths of the window, every worker's merged (what `outrigger top` reads).

import type { ServerResponse } from 'node:http'
import { parseDurationMs } from '../config/duration.ts'
import type { HeavyHitterSummary } from '../live/heavy-hitter-summary.ts'
import type { HeavyHitters } from '../live/heavy-hitters.ts'
import { type TopQuery, topReport } from '../live/top-report.ts'
import type { OtherWorkers } from './other-workers.ts'

const DEFAULT_WINDOW_SECONDS = 10
const DEFAULT_LIMIT = 100

function sendText(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/**
 * Answers /live/top: 404 with the reason when the live view is off (bootstrap `live.enabled: false`), 400
 * on a bad `window` (a duration: `10s`, `1m`) or `limit`, else the TopReport as JSON.
 */
export async function liveTopPage(
  heavyHitters: HeavyHitters | undefined,
  others: OtherWorkers | undefined,
  params: URLSearchParams,
  res: ServerResponse,
): Promise<void> {
  if (heavyHitters === undefined) {
    sendText(res, 404, 'the live view is off (bootstrap live.enabled: false)\n')
    return
  }
  const windowText = params.get('window')
  let windowSeconds = DEFAULT_WINDOW_SECONDS
  if (windowText !== null) {
    try {
      windowSeconds = parseDurationMs(windowText) / 1000
    } catch (err) {
      sendText(res, 400, `window: ${(err as Error).message}\n`)
      return
    }
    if (windowSeconds <= 0) {
      sendText(res, 400, 'window: must be above 0\n')
      return
    }
  }
  const limitText = params.get('limit')
  const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText)
  if (!Number.isInteger(limit) || limit < 0) {
    sendText(res, 400, `limit: expected a whole number ≥ 0, got '${limitText}'\n`)
    return
  }
  const query: TopQuery = { windowSeconds }
  const theirs =
    others === undefined ? [] : ((await others.gather('live-top', query)) as HeavyHitterSummary[])
  const report = topReport(windowSeconds, heavyHitters.summary(windowSeconds), theirs, limit)
  sendText(res, 200, JSON.stringify(report), 'application/json')
}
