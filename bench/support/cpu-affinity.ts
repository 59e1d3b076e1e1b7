// Pins processes to CPUs (taskset, from util-linux), so that systems loaded at the same moment run on the very same core.
//
// Loaded side by side on a 2-core machine without pinning, two proxies, their load generators and the
// upstream share both cores as the scheduler sees fit: how many req/s each proxy serves then depends on
// how the cores were split in that round (per-round ratios swung 1.15–1.39× for the same CPU-per-request
// ratio), and the two cores themselves do not run equally fast at the same moment on a shared host.
// Pinned, the proxies share one core, which the scheduler splits evenly between busy processes, and the
// load generator and the upstream run on the other cores: each proxy's req/s is then its work per
// request on the same core at the same moment.

import { execFileSync } from 'node:child_process'
import { cpus } from 'node:os'
import { processTree } from './proc-stats.ts'

export interface CorePlan {
  /** The CPU the systems under test share, e.g. "1". */
  readonly systemsCpu: string
  /** The CPUs left to the load generator and the upstream, e.g. "0". */
  readonly clientCpus: string
}

/** Sets the CPUs of every thread of each pid (not its children); a process that has exited is skipped. */
function pin(pids: readonly number[], cpuList: string): void {
  for (const pid of pids) {
    try {
      execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpuList, String(pid)], {
        stdio: 'ignore',
      })
    } catch {
      // Gone between listing and pinning, or a thread that exited meanwhile: nothing to pin.
    }
  }
}

function allCpus(): string {
  return `0-${cpus().length - 1}`
}

/** The last CPU for the systems, the others for the clients; undefined on a one-CPU machine (nothing is pinned). */
export function sharedCorePlan(): CorePlan | undefined {
  const count = cpus().length
  if (count < 2) return undefined
  return { systemsCpu: String(count - 1), clientCpus: count === 2 ? '0' : `0-${count - 2}` }
}

/**
 * Pins the systems' process trees and this process (the load generator) with the upstream's tree as
 * `sharedCorePlan()` says, runs `body`, then gives every one of them all CPUs again.
 */
export async function onSharedCore<T>(
  systemRoots: readonly number[],
  upstreamRoots: readonly number[],
  body: () => Promise<T>,
): Promise<T> {
  const plan = sharedCorePlan()
  if (plan === undefined) return body()
  // This process only: its children are the systems and the upstream, pinned on their own.
  const clients = [process.pid, ...processTree(upstreamRoots)]
  const systems = processTree(systemRoots)
  pin(clients, plan.clientCpus)
  pin(systems, plan.systemsCpu)
  try {
    return await body()
  } finally {
    pin([...clients, ...processTree(systemRoots)], allCpus())
  }
}
