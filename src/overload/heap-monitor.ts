// The V8 old generation of this thread against its limit: the pressure that, at 1, is V8's fatal out-of-memory.

import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { isMainThread, resourceLimits } from 'node:worker_threads'

const MiB = 1024 * 1024

/** The young generation's spaces: they empty at every scavenge and never hold what runs V8 out of memory. */
const youngSpaces = new Set(['new_space', 'new_large_object_space'])

/** `--max-old-space-size=<MiB>` from node's own arguments or NODE_OPTIONS (the last one wins, as in node). */
export function maxOldSpaceFlagMb(args: readonly string[], nodeOptions: string): number | undefined {
  let mb: number | undefined
  for (const arg of [...args, ...nodeOptions.split(/\s+/)]) {
    const m = /^--max[-_]old[-_]space[-_]size=(\d+)$/.exec(arg)
    if (m !== null) mb = Number(m[1])
  }
  return mb
}

/**
 * The old generation's limit in bytes: a worker thread's resourceLimits (exact); in the main thread,
 * `--max-old-space-size` when given, else node's default sizing (V8's Heap::ConfigureDefaults from the
 * container's memory limit or the machine's memory: the young generation is about 3/64 of the old, at
 * most 3 × 64 MiB), taken out of heap_size_limit, which counts both.
 */
export function oldGenerationLimit(): number {
  if (!isMainThread && (resourceLimits.maxOldGenerationSizeMb ?? 0) > 0)
    return (resourceLimits.maxOldGenerationSizeMb ?? 0) * MiB
  const flag = maxOldSpaceFlagMb(process.execArgv, process.env.NODE_OPTIONS ?? '')
  if (flag !== undefined) return flag * MiB
  const limit = getHeapStatistics().heap_size_limit
  return limit - Math.min(192 * MiB, (limit * 3) / 67)
}

/**
 * Envoy's fixed_heap monitor (source/extensions/resource_monitors/fixed_heap) for a V8 isolate: the old
 * generation's used bytes over its limit, V8's line for "JavaScript heap out of memory". Each worker
 * thread has its own isolate and limit, so each thread reads its own. Buffers (request and response
 * bodies) live outside the V8 heap and are not counted here.
 */
export class HeapMonitor {
  readonly #limit = oldGenerationLimit()
  #collect: (() => void) | undefined

  /** The old generation's limit in bytes. */
  get limit(): number {
    return this.#limit
  }

  pressure(): number {
    let used = 0
    for (const space of getHeapSpaceStatistics()) {
      if (!youngSpaces.has(space.space_name)) used += space.space_used_size
    }
    return used / this.#limit
  }

  /**
   * A full garbage collection, so that the next pressure() counts only what is live. The old generation
   * keeps its garbage until V8's next mark-compact, which an idle or shedding proxy may not reach for a
   * long time: without this, a heap that filled with requests since finished would read as pressure and
   * the actions would not release. node's documented way: the flag, then `gc` from a new context.
   */
  collect(): void {
    if (this.#collect === undefined) {
      setFlagsFromString('--expose-gc')
      this.#collect = runInNewContext('gc') as () => void
    }
    this.#collect()
  }
}
