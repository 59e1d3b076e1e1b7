// What one protocol's clients saw: counts for the whole run and per minute, latency per minute, failures by reason.

import { build, type Histogram } from 'hdr-histogram-js'

export type ProtocolName = 'http1' | 'http2' | 'grpc' | 'websocket' | 'tcp'
export const PROTOCOLS: readonly ProtocolName[] = ['http1', 'http2', 'grpc', 'websocket', 'tcp']

/** One minute of one protocol. */
export interface MinuteTraffic {
  readonly sent: number
  readonly ok: number
  readonly failed: number
  readonly p50us: number
  readonly p99us: number
}

function histogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  })
}

/**
 * Requests (or echoed messages, for WebSocket and TCP) of one protocol. `failed` are the ones the run does not
 * allow; `dropped` are the ones its endpoint's death took with it (allowed, counted apart): a response already
 * under way when its endpoint was killed (nothing can retry it once the headers went downstream, in Envoy as
 * here), or a message in flight on a connection whose endpoint was killed.
 */
export class Tally {
  readonly name: ProtocolName
  sent = 0
  ok = 0
  failed = 0
  /** Lost with a killed endpoint: a response cut after its headers, a message on a connection it closed. */
  dropped = 0
  readonly reasons = new Map<string, number>()
  /** The first failures with their time (performance.now()), to line them up with kills and reloads. */
  readonly firstFailures: { at: number; reason: string }[] = []
  #minuteSent = 0
  #minuteOk = 0
  #minuteFailed = 0
  #latency = histogram()
  #total = histogram()

  constructor(name: ProtocolName) {
    this.name = name
  }

  started(): void {
    this.sent++
    this.#minuteSent++
  }

  succeeded(startedAt: number): void {
    this.ok++
    this.#minuteOk++
    const us = Math.max(1, Math.round((performance.now() - startedAt) * 1000))
    this.#latency.recordValue(us)
    this.#total.recordValue(us)
  }

  fail(reason: string): void {
    this.failed++
    this.#minuteFailed++
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1)
    if (this.firstFailures.length < 20) this.firstFailures.push({ at: performance.now(), reason })
  }

  /** This minute's counts and percentiles; starts the next minute. */
  takeMinute(): MinuteTraffic {
    const minute: MinuteTraffic = {
      sent: this.#minuteSent,
      ok: this.#minuteOk,
      failed: this.#minuteFailed,
      p50us: this.#latency.getValueAtPercentile(50),
      p99us: this.#latency.getValueAtPercentile(99),
    }
    this.#minuteSent = 0
    this.#minuteOk = 0
    this.#minuteFailed = 0
    this.#latency.reset()
    return minute
  }

  /** p50 and p99 over the whole run, in µs. */
  overall(): { p50us: number; p99us: number } {
    return { p50us: this.#total.getValueAtPercentile(50), p99us: this.#total.getValueAtPercentile(99) }
  }
}

/** Calls `send` `rate` times a second, evenly spaced, until stopped (open loop: it never waits for answers). */
export class Pacer {
  readonly #rate: number
  readonly #send: () => void
  #start = 0
  #count = 0
  #timer: NodeJS.Timeout | undefined

  constructor(rate: number, send: () => void) {
    this.#rate = rate
    this.#send = send
  }

  start(): void {
    this.#start = performance.now()
    this.#timer = setInterval(() => this.#tick(), 5)
  }

  #tick(): void {
    const due = Math.floor(((performance.now() - this.#start) / 1000) * this.#rate)
    // A stalled event loop sends the backlog at once rather than silently lowering the rate.
    while (this.#count < due) {
      this.#count++
      this.#send()
    }
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}
