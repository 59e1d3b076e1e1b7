// The peak resident memory of a proxy process, from /proc/<pid>/status, for tests that bound what a body may cost.

import { readFileSync, writeFileSync } from 'node:fs'
import type { ProxyProcess } from './proxy-process.ts'

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM). */
function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/**
 * Resets the proxy's peak RSS (VmHWM) to its current RSS and returns a function giving the growth since.
 * Where the kernel refuses the reset, growth is measured from the old peak, which can only under-report.
 */
export function watchPeakRss(proxy: ProxyProcess): () => number {
  const pid = proxy.child.pid
  if (pid === undefined) throw new Error('the proxy process has no pid')
  let reset = true
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
  } catch {
    reset = false
  }
  const before = procStatus(pid, reset ? 'VmRSS' : 'VmHWM')
  return () => procStatus(pid, 'VmHWM') - before
}
