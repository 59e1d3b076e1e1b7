// This thread's overload manager: samples its heap and event-loop delay on an unref'd timer and sets the actions the data path reads.

import type { OverloadAction, OverloadConfig, OverloadResource, OverloadState } from '../protocol/overload.ts'
import { overloadActionNames } from '../protocol/overload.ts'
import type { SharedCounters } from '../shared/shared-counters.ts'
import { log } from '../telemetry/log.ts'
import { EventLoopDelayMonitor } from './event-loop-delay-monitor.ts'
import { HeapMonitor } from './heap-monitor.ts'
import { OverloadStatsWriter } from './overload-stats.ts'
import { TriggerState } from './trigger-state.ts'

/** While heap pressure is at a trigger's line, the heap is collected before it is read, at most this often… */
const collectEveryMs = 1_000
/** …and never more than 1/collectionShare of the time, however long a collection of a big heap takes. */
const collectionShare = 20

interface ActionTriggers {
  readonly action: OverloadAction
  readonly triggers: readonly (readonly [OverloadResource, TriggerState])[]
}

/**
 * Envoy's OverloadManagerImpl (source/server/overload_manager_impl.cc) for one thread: every
 * `refreshIntervalMs` it reads each resource's pressure, updates each action's triggers, and sets the
 * action to the highest of its triggers' states. Envoy runs one per process and posts the states to its
 * workers; here each worker thread has its own V8 heap and event loop, so each runs its own and acts on
 * its own traffic. Requests and connections read the three fields of OverloadState and nothing else.
 */
export class OverloadManager implements OverloadState {
  stopAcceptingRequests = 0
  rejectIncomingConnections = false
  disableHttpKeepalive = false

  readonly #config: OverloadConfig
  readonly #actions: readonly ActionTriggers[]
  readonly #stats: OverloadStatsWriter
  readonly #heap = new HeapMonitor()
  #eventLoop: EventLoopDelayMonitor | undefined
  #timer: NodeJS.Timeout | undefined
  #sampledAt = 0
  /** When the next collection before a heap reading may run. */
  #collectAfter = Number.NEGATIVE_INFINITY
  /** The lowest heap pressure at which some heap trigger acts (a threshold less its recovery, or a ramp's start). */
  readonly #heapLine: number

  constructor(config: OverloadConfig, counters: SharedCounters, worker: number) {
    this.#config = config
    this.#stats = new OverloadStatsWriter(counters, worker)
    this.#actions = (
      Object.entries(config.actions) as [OverloadAction, OverloadConfig['actions'][OverloadAction]][]
    ).map(([action, triggers]) => ({
      action,
      triggers: (
        Object.entries(triggers) as [OverloadResource, NonNullable<(typeof triggers)[OverloadResource]>][]
      ).map(([resource, trigger]) => [resource, new TriggerState(trigger, config.recovery)] as const),
    }))
    this.#heapLine = this.#lowestHeapLine()
  }

  #lowestHeapLine(): number {
    let line = Number.POSITIVE_INFINITY
    for (const { triggers } of this.#actions) {
      for (const [resource, trigger] of triggers) {
        if (resource === 'heap') line = Math.min(line, trigger.line)
      }
    }
    return line
  }

  /** The old generation's limit in bytes, which heap pressure is measured against. */
  get oldGenerationLimit(): number {
    return this.#heap.limit
  }

  /** Starts sampling (nothing when the bootstrap turned the manager off). */
  start(): void {
    if (!this.#config.enabled || this.#timer !== undefined) return
    if (this.#uses('eventLoopDelay'))
      this.#eventLoop = new EventLoopDelayMonitor(this.#config.eventLoopDelaySaturationMs)
    this.#sampledAt = performance.now()
    this.#timer = setInterval(this.#sample, this.#config.refreshIntervalMs)
    // The overload manager never keeps a draining proxy alive.
    this.#timer.unref()
  }

  close(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#eventLoop?.close()
    this.#eventLoop = undefined
  }

  #uses(resource: OverloadResource): boolean {
    return this.#actions.some((a) => a.triggers.some(([r]) => r === resource))
  }

  readonly #sample = (): void => {
    const now = performance.now()
    const elapsedMs = now - this.#sampledAt
    const lateMs = Math.max(0, elapsedMs - this.#config.refreshIntervalMs)
    this.#sampledAt = now
    const pressure: Record<OverloadResource, number> = {
      heap: this.#heapPressure(now),
      eventLoopDelay: this.#eventLoop?.sample(elapsedMs, lateMs) ?? 0,
    }
    this.#stats.set('heap', pressure.heap)
    this.#stats.set('eventLoopDelay', pressure.eventLoopDelay)
    for (const { action, triggers } of this.#actions) {
      let state = 0
      for (const [resource, trigger] of triggers) state = Math.max(state, trigger.update(pressure[resource]))
      this.#apply(action, state, pressure)
      this.#stats.set(action, state)
    }
  }

  /**
   * The heap's pressure; at or above a trigger's line it is read again after a full collection, so
   * garbage never sets an action and a heap freed of finished requests releases it. A collection runs
   * only while the heap is that full, where V8 itself would collect soon, at most every collectEveryMs
   * and at most 1/collectionShare of the time (a heap of a few GiB takes a second to mark).
   */
  #heapPressure(now: number): number {
    const pressure = this.#heap.pressure()
    if (pressure < this.#heapLine || now < this.#collectAfter) return pressure
    this.#heap.collect()
    const tookMs = performance.now() - now
    this.#collectAfter = now + Math.max(collectEveryMs, tookMs * collectionShare)
    return this.#heap.pressure()
  }

  #apply(action: OverloadAction, state: number, pressure: Record<OverloadResource, number>): void {
    const before = this.#state(action)
    if (action === 'stopAcceptingRequests') this.stopAcceptingRequests = state
    else if (action === 'rejectIncomingConnections') this.rejectIncomingConnections = state >= 1
    else this.disableHttpKeepalive = state >= 1
    const after = this.#state(action)
    if (before > 0 !== after > 0) {
      const heap = Math.round(pressure.heap * 100)
      const loop = Math.round(pressure.eventLoopDelay * 100)
      const what = after > 0 ? 'active' : 'released'
      log.warning(
        `overload: ${overloadActionNames[action]} ${what} (heap ${heap}%, event-loop delay ${loop}%)`,
      )
    }
  }

  #state(action: OverloadAction): number {
    if (action === 'stopAcceptingRequests') return this.stopAcceptingRequests
    if (action === 'rejectIncomingConnections') return this.rejectIncomingConnections ? 1 : 0
    return this.disableHttpKeepalive ? 1 : 0
  }
}
