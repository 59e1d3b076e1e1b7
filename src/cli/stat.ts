// `outrigger stat`: a running proxy's live request rates, success rates, latencies and TCP numbers (admin /live/stat) as a table or JSON.

import { parseArgs } from 'node:util'
import type { LatencyQuantiles, StatReport, StatRow } from '../live/live-api.ts'
import { parseGrouping, parseWindow } from '../live/live-query.ts'

const usage = `usage: outrigger stat [--by service|route|cluster|listener] [--window 10s] [-o json] [--admin host:port]
`

const COLUMNS = [
  'NAME',
  'DIRECTION',
  'RPS',
  'SUCCESS',
  'P50',
  'P95',
  'P99',
  'TCP CONN',
  'TCP IN/s',
  'TCP OUT/s',
]
/** Columns aligned to the right (numbers); NAME and DIRECTION align left. */
const NUMERIC_FROM = 2

function milliseconds(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)}ms`
  if (ms < 100) return `${ms.toFixed(1)}ms`
  return `${Math.round(ms)}ms`
}

function bytes(perSecond: number): string {
  if (perSecond < 1024) return `${Math.round(perSecond)}B`
  if (perSecond < 1024 * 1024) return `${(perSecond / 1024).toFixed(1)}KiB`
  return `${(perSecond / (1024 * 1024)).toFixed(1)}MiB`
}

function latencyCells(latency: LatencyQuantiles | null): string[] {
  return latency === null ? ['-', '-', '-'] : [latency.p50, latency.p95, latency.p99].map(milliseconds)
}

function cells(row: StatRow): string[] {
  return [
    row.name,
    row.direction,
    row.requestsPerSecond.toFixed(1),
    row.successRate === null ? '-' : `${(row.successRate * 100).toFixed(2)}%`,
    ...latencyCells(row.latencyMs),
    String(row.tcpOpenConnections),
    bytes(row.tcpBytesReceivedPerSecond),
    bytes(row.tcpBytesSentPerSecond),
  ]
}

/** The report as aligned columns, one line per row (the header alone when there is none). */
export function statTable(report: StatReport): string {
  const lines = [COLUMNS, ...report.rows.map(cells)]
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((line) => line[i].length)))
  return lines
    .map((line) =>
      line
        .map((cell, i) => (i >= NUMERIC_FROM ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('')
}

/** Exit code: 0 shown, 1 when admin cannot be reached or refuses (live off), 2 on a usage error. */
export async function stat(args: readonly string[]): Promise<number> {
  let values: { by?: string; window?: string; output?: string; admin?: string }
  try {
    values = parseArgs({
      args: [...args],
      options: {
        by: { type: 'string' },
        window: { type: 'string' },
        output: { type: 'string', short: 'o' },
        admin: { type: 'string' },
      },
    }).values
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}`)
    return 2
  }
  const by = parseGrouping(values.by)
  const windowSeconds = parseWindow(values.window)
  if (
    by === undefined ||
    windowSeconds === undefined ||
    (values.output !== undefined && values.output !== 'json')
  ) {
    process.stderr.write(
      by === undefined
        ? `--by must be service, route, cluster or listener\n${usage}`
        : windowSeconds === undefined
          ? `--window must be 1s to 60s\n${usage}`
          : `-o takes json\n${usage}`,
    )
    return 2
  }
  const admin = values.admin ?? '127.0.0.1:15000'
  const url = `http://${admin}/live/stat?by=${by}&window=${windowSeconds}s`
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message
    process.stderr.write(`outrigger stat: cannot reach the proxy's admin at ${admin}: ${cause}\n`)
    return 1
  }
  const body = await res.text()
  if (res.status !== 200) {
    process.stderr.write(`outrigger stat: ${admin} answered ${res.status}: ${body.trim()}\n`)
    return 1
  }
  if (values.output === 'json') {
    process.stdout.write(`${JSON.stringify(JSON.parse(body), null, 2)}\n`)
    return 0
  }
  process.stdout.write(statTable(JSON.parse(body) as StatReport))
  return 0
}
