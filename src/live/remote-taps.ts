// A worker thread's copies of the taps that worker 0's admin serves: attached and detached on worker 0's word, their matches sent to it.

import { log } from '../telemetry/log.ts'
import type { TapEvent } from './live-api.ts'
import { TapFilter, type TapFilterSpec } from './tap-filter.ts'
import type { Tap, TapHub } from './tap-hub.ts'

/** What worker 0 asks the other workers on 'tap-attach' (each answers once attached). */
export interface TapAttachMessage {
  readonly id: string
  readonly filter: TapFilterSpec
  /** The stream's bound (a worker sends at most this many); null for none. */
  readonly max: number | null
}

/** What worker 0 broadcasts on 'tap-detach' when the stream ends or its client goes away. */
export interface TapDetachMessage {
  readonly id: string
}

/** What a worker sends worker 0 on 'tap-event' for each request a copy matches. */
export interface TapEventMessage {
  readonly id: string
  readonly event: TapEvent
}

/** This worker's copies of worker 0's taps, by stream id. */
export class RemoteTaps {
  readonly #hub: TapHub
  readonly #send: (message: TapEventMessage) => void
  readonly #taps = new Map<string, Tap>()

  /** `send` delivers a match to worker 0 (WorkerLink's tellWorkerZero on 'tap-event'). */
  constructor(hub: TapHub, send: (message: TapEventMessage) => void) {
    this.#hub = hub
    this.#send = send
  }

  /** Taps attached now for worker 0. */
  get size(): number {
    return this.#taps.size
  }

  /** Attaches a copy of the tap (worker 0 checked the filter already); answers true once attached. */
  attach(payload: unknown): boolean {
    const { id, filter, max } = payload as TapAttachMessage
    if (this.#taps.has(id)) return true
    let compiled: TapFilter
    try {
      compiled = new TapFilter(filter)
    } catch (err) {
      log.error(`tap ${id} from worker 0: ${(err as Error).message}`)
      return false
    }
    const tap = this.#hub.attach(compiled, max ?? Number.POSITIVE_INFINITY, (event) => {
      if (!tap.attached) this.#taps.delete(id)
      this.#send({ id, event })
    })
    this.#taps.set(id, tap)
    return true
  }

  detach(payload: unknown): void {
    const { id } = payload as TapDetachMessage
    this.#taps.get(id)?.detach()
    this.#taps.delete(id)
  }
}
