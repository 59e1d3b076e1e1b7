// One row of the live view (a service, route, cluster or listener, in one direction): per-second counts over the last minute and ten minutes of history.

import { encodeIntoCompressedBase64 } from 'hdr-histogram-js'
import type { TrafficDirection } from '../telemetry/request-record.ts'
import { HISTORY_SECONDS } from './live-limits.ts'
import type { HistoryPointSnapshot, StatRowSnapshot } from './stat-snapshot.ts'
import {
  CLOSED_SLOTS,
  mergeHistogram,
  type ResolvedLatency,
  WindowedHistogram,
} from './windowed-histogram.ts'

export { HISTORY_SECONDS }

/**
 * Counters for the second being counted, rings of closed seconds (the window: requests, successes, TCP
 * bytes, latencies) and a ring of per-second history points. Its memory is fixed once made, apart from
 * the latency slots, which WindowedHistogram bounds.
 */
export class LiveRow {
  readonly name: string
  readonly direction: TrafficDirection
  /** For a cluster row: the service its name carries, computed once (the request path builds no string). */
  readonly serviceName: string
  /** TCP connections open now, counted when a snapshot is taken. */
  tcpOpen = 0

  #requests = 0
  #successes = 0
  #tcpIn = 0
  #tcpOut = 0
  readonly #latency = new WindowedHistogram()
  readonly #windowRequests = new Uint32Array(CLOSED_SLOTS)
  readonly #windowSuccesses = new Uint32Array(CLOSED_SLOTS)
  readonly #windowTcpIn = new Float64Array(CLOSED_SLOTS)
  readonly #windowTcpOut = new Float64Array(CLOSED_SLOTS)
  #newest = 0

  readonly #historyT = new Float64Array(HISTORY_SECONDS)
  readonly #historyRequests = new Uint32Array(HISTORY_SECONDS)
  readonly #historySuccesses = new Uint32Array(HISTORY_SECONDS)
  /** p50, p95, p99 in ms per history second (NaN: no request that second). */
  readonly #historyLatency = new Float32Array(HISTORY_SECONDS * 3)
  #historyNewest = HISTORY_SECONDS - 1
  #historyLength = 0
  /** Closed seconds since this row last saw traffic. */
  #idleSeconds = 0

  constructor(name: string, direction: TrafficDirection, serviceName = '') {
    this.name = name
    this.direction = direction
    this.serviceName = serviceName
  }

  recordRequest(latency: ResolvedLatency, success: boolean): void {
    this.#requests++
    if (success) this.#successes++
    this.#latency.recordResolved(latency)
  }

  addTcpBytes(received: number, sent: number): void {
    this.#tcpIn += received
    this.#tcpOut += sent
  }

  /** True once the row has seen nothing for the whole history and holds no open connection: it can go. */
  get expired(): boolean {
    return this.#idleSeconds >= HISTORY_SECONDS && this.tcpOpen === 0
  }

  /** Closes the current second (`t`: unix seconds at its end) into the window and the history. */
  rotate(t: number): void {
    const requests = this.#requests
    const active = requests > 0 || this.#tcpIn > 0 || this.#tcpOut > 0 || this.tcpOpen > 0
    this.#idleSeconds = active ? 0 : this.#idleSeconds + 1
    const slot = (this.#newest + 1) % CLOSED_SLOTS
    this.#newest = slot
    this.#windowRequests[slot] = requests
    this.#windowSuccesses[slot] = this.#successes
    this.#windowTcpIn[slot] = this.#tcpIn
    this.#windowTcpOut[slot] = this.#tcpOut
    const quantiles = this.#latency.rotate()

    const h = (this.#historyNewest + 1) % HISTORY_SECONDS
    this.#historyNewest = h
    if (this.#historyLength < HISTORY_SECONDS) this.#historyLength++
    this.#historyT[h] = t
    this.#historyRequests[h] = requests
    this.#historySuccesses[h] = this.#successes
    this.#historyLatency[h * 3] = quantiles?.p50 ?? Number.NaN
    this.#historyLatency[h * 3 + 1] = quantiles?.p95 ?? Number.NaN
    this.#historyLatency[h * 3 + 2] = quantiles?.p99 ?? Number.NaN

    this.#requests = 0
    this.#successes = 0
    this.#tcpIn = 0
    this.#tcpOut = 0
  }

  /**
   * The last `seconds` seconds (the current one and those closed before it), or undefined when the row
   * saw nothing in them and holds no open connection.
   */
  snapshot(seconds: number): StatRowSnapshot | undefined {
    let requests = this.#requests
    let successes = this.#successes
    let tcpIn = this.#tcpIn
    let tcpOut = this.#tcpOut
    const closed = Math.min(seconds - 1, CLOSED_SLOTS)
    for (let back = 0; back < closed; back++) {
      const slot = (this.#newest - back + CLOSED_SLOTS) % CLOSED_SLOTS
      requests += this.#windowRequests[slot]
      successes += this.#windowSuccesses[slot]
      tcpIn += this.#windowTcpIn[slot]
      tcpOut += this.#windowTcpOut[slot]
    }
    if (requests === 0 && tcpIn === 0 && tcpOut === 0 && this.tcpOpen === 0) return undefined
    let latencyUs: string | null = null
    if (requests > 0) {
      const merged = mergeHistogram()
      this.#latency.addWindowTo(merged, seconds)
      latencyUs = encodeIntoCompressedBase64(merged)
    }
    return {
      name: this.name,
      direction: this.direction,
      requests,
      successes,
      latencyUs,
      tcpOpenConnections: this.tcpOpen,
      tcpBytesReceived: tcpIn,
      tcpBytesSent: tcpOut,
    }
  }

  /** The last `seconds` closed seconds, oldest first; undefined when none of them saw traffic. */
  history(seconds: number): HistoryPointSnapshot[] | undefined {
    const count = Math.min(seconds, this.#historyLength)
    const points: HistoryPointSnapshot[] = new Array(count)
    let any = false
    for (let i = 0; i < count; i++) {
      const h = (this.#historyNewest - (count - 1 - i) + HISTORY_SECONDS) % HISTORY_SECONDS
      const requests = this.#historyRequests[h]
      if (requests > 0) any = true
      const p50 = this.#historyLatency[h * 3]
      points[i] = {
        t: this.#historyT[h],
        requests,
        successes: this.#historySuccesses[h],
        latencyMs: Number.isNaN(p50)
          ? null
          : { p50, p95: this.#historyLatency[h * 3 + 1], p99: this.#historyLatency[h * 3 + 2] },
      }
    }
    return any ? points : undefined
  }

  /** Bytes held by the latency histograms (the rest of the row is fixed-size arrays). */
  get latencyFootprintBytes(): number {
    return this.#latency.footprintBytes
  }
}
