// `outrigger tap`: a running proxy's live request summaries (admin /tap), one aligned text line per request or the JSON lines as received.

import { type IncomingMessage, request } from 'node:http'
import { parseArgs } from 'node:util'
import type { TapEvent } from '../live/live-api.ts'

export const tapUsage = `usage: outrigger tap [--authority host[:port]] [--path PREFIX] [--method M] [--status 2xx|4xx|5xx|CODE]
                     [--direction inbound|outbound] [--max N] [-o text|json] [--admin host:port]
`

/** The text view's columns, the fixed-width ones first (Linkerd's tap, one line per request). */
const HEADER = `${'TIME'.padEnd(12)} ${'DIR'.padEnd(3)} ${'STATUS'.padStart(6)} ${'FLAGS'.padEnd(7)} ${'DURATION'.padStart(10)} ${'IN'.padStart(7)} ${'OUT'.padStart(8)}  ${'METHOD'.padEnd(7)} AUTHORITY PATH  → UPSTREAM  PEER`

/** One aligned line for a tapped request (times in UTC). */
export function formatTapEvent(e: TapEvent): string {
  const time = e.time.slice(11, 23)
  const dir = e.direction === 'inbound' ? 'in' : 'out'
  const status = e.status === 0 ? '-' : String(e.status)
  const duration = `${e.durationMs.toFixed(1)}ms`
  const grpc = e.grpcStatus === undefined ? '' : ` grpc-status=${e.grpcStatus}`
  return `${time.padEnd(12)} ${dir.padEnd(3)} ${status.padStart(6)} ${e.responseFlags.padEnd(7)} ${duration.padStart(10)} ${String(e.bytesReceived).padStart(7)} ${String(e.bytesSent).padStart(8)}  ${e.method.padEnd(7)} ${e.authority} ${e.path}  → ${e.upstreamHost || '-'}  ${e.peer || '-'}${grpc}`
}

/** `host:port` (default 127.0.0.1:15000; a bare port means 127.0.0.1), or undefined when it is not one. */
function adminAddress(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$|^(\d{1,5})$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[3] ?? match[4])
  if (port < 1 || port > 65535) return undefined
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port }
}

/**
 * Streams the admin's /tap until `--max` requests came (exit 0), Ctrl-C (exit 0), or the proxy goes
 * away (exit 1). Exit 1 also when the admin cannot be reached; 2 for a usage error or a filter the
 * proxy refuses (its reason printed).
 */
export async function tap(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  let values: Record<string, string | undefined>
  try {
    values = parseArgs({
      args,
      options: {
        authority: { type: 'string' },
        path: { type: 'string' },
        method: { type: 'string' },
        status: { type: 'string' },
        direction: { type: 'string' },
        max: { type: 'string' },
        output: { type: 'string', short: 'o', default: 'text' },
        admin: { type: 'string', default: '127.0.0.1:15000' },
      },
    }).values
  } catch (error) {
    err.write(`${(error as Error).message}\n${tapUsage}`)
    return 2
  }
  const json = values.output === 'json'
  if (!json && values.output !== 'text') {
    err.write(`-o must be text or json\n${tapUsage}`)
    return 2
  }
  const admin = adminAddress(values.admin ?? '')
  if (admin === undefined) {
    err.write(`--admin must be host:port, not ${values.admin}\n`)
    return 2
  }
  const query = new URLSearchParams()
  for (const name of ['authority', 'path', 'method', 'status', 'direction', 'max'] as const) {
    const value = values[name]
    if (value !== undefined) query.set(name, value)
  }
  const where = `${admin.host.includes(':') ? `[${admin.host}]` : admin.host}:${admin.port}`
  return new Promise<number>((resolve) => {
    const req = request({ host: admin.host, port: admin.port, path: `/tap?${query}`, agent: false })
    let done = false
    const finish = (code: number): void => {
      if (done) return
      done = true
      process.off('SIGINT', interrupted)
      process.off('SIGTERM', interrupted)
      req.destroy()
      resolve(code)
    }
    const interrupted = (): void => finish(0)
    process.once('SIGINT', interrupted)
    process.once('SIGTERM', interrupted)
    // A reader that went away (`| head`): stop quietly.
    out.once('error', () => finish(0))
    req.once('error', (error: NodeJS.ErrnoException) => {
      if (done) return
      err.write(`outrigger tap: cannot reach the admin API at ${where}: ${error.code ?? error.message}\n`)
      finish(1)
    })
    req.once('response', (res: IncomingMessage) => {
      res.setEncoding('utf8')
      if (res.statusCode !== 200) {
        let body = ''
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.once('end', () => {
          err.write(`outrigger tap: ${body.trim() || `admin answered ${res.statusCode}`}\n`)
          finish(res.statusCode === 400 ? 2 : 1)
        })
        return
      }
      err.write(`tapping ${where}${query.size > 0 ? ` (${query})` : ''}; Ctrl-C stops\n`)
      if (!json) out.write(`${HEADER}\n`)
      let rest = ''
      res.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n')
        rest = lines.pop() ?? ''
        for (const line of lines) if (line !== '') show(line)
      })
      const show = (line: string): void => {
        const parsed = JSON.parse(line) as TapEvent | { dropped: number }
        if ('dropped' in parsed) {
          err.write(
            `outrigger tap: the proxy has dropped ${parsed.dropped} events so far: this terminal reads too slowly\n`,
          )
          if (json) out.write(`${line}\n`)
        } else out.write(json ? `${line}\n` : `${formatTapEvent(parsed)}\n`)
      }
      res.once('end', () => finish(0))
      res.once('error', () => {})
      res.once('close', () => {
        if (done) return
        if (!res.complete) err.write(`outrigger tap: the proxy at ${where} closed the stream\n`)
        finish(res.complete ? 0 : 1)
      })
    })
    req.end()
  })
}
