// CPU time and memory of a process tree, read from /proc (utime+stime in /proc/<pid>/stat, VmRSS in /proc/<pid>/status).

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/** Clock ticks per second, the unit of utime and stime. */
export const CLK_TCK = readClockTicks()

function readClockTicks(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100
  } catch {
    return 100
  }
}

interface StatLine {
  readonly ppid: number
  readonly ticks: number
}

function readStat(pid: number): StatLine | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) }
  } catch {
    return undefined
  }
}

/** The roots and all their descendants that are alive now. */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    const stat = readStat(pid)
    if (stat === undefined) continue
    const list = children.get(stat.ppid)
    if (list === undefined) children.set(stat.ppid, [pid])
    else list.push(pid)
  }
  const tree: number[] = []
  const queue = [...roots]
  while (queue.length > 0) {
    const pid = queue.shift()!
    tree.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return tree
}

/** User + system CPU seconds used so far by the trees under `roots`. */
export function cpuSeconds(roots: readonly number[]): number {
  let ticks = 0
  for (const pid of processTree(roots)) ticks += readStat(pid)?.ticks ?? 0
  return ticks / CLK_TCK
}

function statusKiB(pid: number, key: string): number {
  try {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? 0 : Number(match[1])
  } catch {
    return 0
  }
}

export interface Memory {
  /** Resident set size now (VmRSS), summed over the trees, in MiB. */
  readonly rssMiB: number
  /** Peak resident set size (VmHWM), summed over the trees, in MiB. */
  readonly peakMiB: number
}

export function memory(roots: readonly number[]): Memory {
  let rss = 0
  let peak = 0
  for (const pid of processTree(roots)) {
    rss += statusKiB(pid, 'VmRSS')
    peak += statusKiB(pid, 'VmHWM')
  }
  return { rssMiB: rss / 1024, peakMiB: peak / 1024 }
}

/** The direct children of `pid` (from /proc/<pid>/task/<tid>/children), e.g. a supervisor's workers. */
export function childPids(pid: number): number[] {
  const pids: number[] = []
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim()
      if (text !== '') pids.push(...text.split(/\s+/).map(Number))
    }
  } catch {
    // gone
  }
  return pids.sort((a, b) => a - b)
}

/** CPU seconds the whole machine has spent busy (not idle or iowait) since boot, summed over cores, from /proc/stat. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
  // cpu user nice system idle iowait irq softirq …; guest time is already inside user, steal is not ours.
  const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number)
  return (user + nice + system + irq + softirq) / CLK_TCK
}
