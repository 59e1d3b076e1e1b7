// The proxy's own log: one line per event on stderr, `<time> <level> <message>`; off the request path.

export type LogLevel = 'debug' | 'info' | 'warning' | 'error'

const order: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 }
let threshold: LogLevel = (process.env.OUTRIGGER_LOG_LEVEL as LogLevel | undefined) ?? 'info'

export function setLogLevel(level: LogLevel): void {
  threshold = level
}

export function getLogLevel(): LogLevel {
  return threshold
}

export function isLogLevel(value: string): value is LogLevel {
  return value in order
}

/**
 * Set when stderr failed (EPIPE: whatever read it went away). Writing on would fail again, and each
 * failure would be logged again: the proxy keeps serving and stops logging instead.
 */
let stderrBroken = false
process.stderr.on('error', () => {
  stderrBroken = true
})

function write(level: LogLevel, message: string): void {
  if (order[level] < order[threshold] || stderrBroken) return
  process.stderr.write(`${new Date().toISOString()} ${level} ${message}\n`)
}

export const log = {
  debug: (message: string): void => write('debug', message),
  info: (message: string): void => write('info', message),
  warning: (message: string): void => write('warning', message),
  error: (message: string): void => write('error', message),
}
