// Observers of finished traffic (metrics, access log, tap): the data path calls them at a request's or connection's end and never waits on them.

import { log } from './log.ts'
import type { RequestRecord } from './request-record.ts'
import type { TcpRecord } from './tcp-record.ts'

/**
 * One telemetry sink. Each method is optional; each runs synchronously on the event loop when the
 * traffic ends, so it must only count, copy or queue (a write that can block goes through a buffered
 * stream). The record is read during the call only.
 */
export interface TrafficObserver {
  readonly name: string
  /** A request ended: its response completed, or the client or the upstream went away. Called once. */
  requestEnded?(record: RequestRecord): void
  /** A TCP connection reached the TCP proxy and passed authorization (before routing and connecting). */
  tcpOpened?(record: TcpRecord): void
  /** Both sides of a TCP proxy connection have closed, or it failed or was denied (`record.opened` false). Called once. */
  tcpEnded?(record: TcpRecord): void
}

/**
 * The runtime's observers in registration order. An observer that throws is skipped for that call and
 * its first failure logged (not every one: a broken sink would flood the log): telemetry never fails traffic.
 */
export class TrafficObservers {
  #list: readonly TrafficObserver[] = []
  readonly #failed = new WeakSet<TrafficObserver>()

  /** False when nothing observes: the data path then skips even the end-of-request hook. */
  get active(): boolean {
    return this.#list.length > 0
  }

  add(observer: TrafficObserver): void {
    this.#list = [...this.#list, observer]
  }

  remove(observer: TrafficObserver): void {
    this.#list = this.#list.filter((o) => o !== observer)
  }

  requestEnded(record: RequestRecord): void {
    for (const observer of this.#list)
      if (observer.requestEnded !== undefined) this.#tell(observer, observer.requestEnded, record)
  }

  tcpOpened(record: TcpRecord): void {
    for (const observer of this.#list)
      if (observer.tcpOpened !== undefined) this.#tell(observer, observer.tcpOpened, record)
  }

  tcpEnded(record: TcpRecord): void {
    for (const observer of this.#list)
      if (observer.tcpEnded !== undefined) this.#tell(observer, observer.tcpEnded, record)
  }

  /** Calls one observer's method; a throw is its own failure, never the traffic's. */
  #tell<R>(observer: TrafficObserver, method: (record: R) => void, record: R): void {
    try {
      method.call(observer, record)
    } catch (err) {
      this.#failure(observer, err)
    }
  }

  #failure(observer: TrafficObserver, err: unknown): void {
    if (this.#failed.has(observer)) return
    this.#failed.add(observer)
    log.error(
      `telemetry ${observer.name} failed (further failures are not logged): ${(err as Error).stack ?? err}`,
    )
  }
}
