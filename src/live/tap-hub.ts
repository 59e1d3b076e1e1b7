// The taps attached to this worker's traffic (`outrigger tap`, admin /tap): an observer registered only while a tap is attached.

import type { RequestRecord } from '../telemetry/request-record.ts'
import type { TrafficObserver } from '../telemetry/traffic-observer.ts'
import type { TapEvent } from './live-api.ts'
import { tapEvent } from './tap-event.ts'
import type { TapFilter } from './tap-filter.ts'

/** Where a tap's events go (admin's stream, or worker 0 for another worker's copy of a tap). */
export type TapSink = (event: TapEvent) => void

/** The runtime's observer list, as far as the hub uses it. */
export interface ObserverRegistry {
  add(observer: TrafficObserver): void
  remove(observer: TrafficObserver): void
}

/** One attached tap; `detach` is idempotent. */
export class Tap {
  readonly filter: TapFilter
  readonly #hub: TapHub
  readonly #sink: TapSink
  /** Events this tap may still deliver (Infinity without a bound). */
  #remaining: number
  #attached = true

  constructor(hub: TapHub, filter: TapFilter, max: number, sink: TapSink) {
    this.#hub = hub
    this.filter = filter
    this.#remaining = max
    this.#sink = sink
  }

  get attached(): boolean {
    return this.#attached
  }

  /** Hands `event` to the sink; detaches once `max` events went. */
  deliver(event: TapEvent): void {
    if (!this.#attached) return
    this.#remaining--
    if (this.#remaining <= 0) this.detach()
    this.#sink(event)
  }

  detach(): void {
    if (!this.#attached) return
    this.#attached = false
    this.#hub.forget(this)
  }
}

/**
 * This worker's taps. The hub joins the runtime's observers at the first attach and leaves them at the
 * last detach, so with no tap the data path does no more than without the feature; with taps, a request
 * is tested against each filter on its record's fields, and its TapEvent is built (once) only when one
 * matches. The runtime owns it, whether or not the bootstrap's `live` block is enabled.
 */
export class TapHub implements TrafficObserver {
  readonly name = 'tap'
  readonly #observers: ObserverRegistry
  readonly #worker: number
  #taps: readonly Tap[] = []
  /** Taps attached since start, events delivered, and events admin's streams dropped for slow clients (admin /stats). */
  attachedTotal = 0
  eventsTotal = 0
  droppedTotal = 0

  constructor(observers: ObserverRegistry, worker: number) {
    this.#observers = observers
    this.#worker = worker
  }

  /** Taps attached now. */
  get size(): number {
    return this.#taps.length
  }

  /** Attaches a tap that gives `sink` at most `max` matching requests (Infinity: until detached). */
  attach(filter: TapFilter, max: number, sink: TapSink): Tap {
    const tap = new Tap(this, filter, max, sink)
    this.#taps = [...this.#taps, tap]
    this.attachedTotal++
    if (this.#taps.length === 1) this.#observers.add(this)
    return tap
  }

  /** Called by `Tap.detach`. */
  forget(tap: Tap): void {
    const before = this.#taps.length
    this.#taps = this.#taps.filter((t) => t !== tap)
    if (before > 0 && this.#taps.length === 0) this.#observers.remove(this)
  }

  requestEnded(record: RequestRecord): void {
    let event: TapEvent | undefined
    // The list is replaced, never changed, on attach and detach: a tap that detaches while delivering is safe.
    for (const tap of this.#taps) {
      if (!tap.filter.matches(record)) continue
      event ??= tapEvent(record, this.#worker)
      this.eventsTotal++
      tap.deliver(event)
    }
  }
}
