// Hands a collector's finished spans to an export thread of their own, so the SDK's HTTP client never shares the data path's JIT feedback.

import { Worker } from 'node:worker_threads'
import type { FinishedSpan, SpanSink } from './finished-span.ts'
import { log } from './log.ts'

/** What a sink counts: spans the collector accepted, and spans lost (queue full, or export failed). */
export interface SpanCounters {
  sent(count: number): void
  dropped(count: number): void
}

/** What the export thread is started with. */
export interface ExportThreadData {
  readonly endpoint: string
  readonly resourceAttributes: Readonly<Record<string, string | number | boolean>>
}

/** Sink → export thread: spans to queue, or the last call before the thread ends. */
export type SinkMessage =
  | { readonly type: 'spans'; readonly spans: readonly FinishedSpan[] }
  | { readonly type: 'shutdown' }

/** Export thread → sink: how many of the spans it was given are done with, and how; `closed` after shutdown. */
export interface ExportReport {
  readonly sent: number
  readonly dropped: number
  readonly closed?: true
}

/** Spans queued here and in the export thread together, at most (the SDK's default queue size). */
const maxQueueSize = 2048
/** Spans are posted to the thread in groups: when this many wait, or after handOffDelayMs. */
const handOffBatch = 128
const handOffDelayMs = 200

const threadScript = new URL(
  import.meta.url.endsWith('.ts') ? './otlp-export-thread.ts' : './otlp-export-thread.js',
  import.meta.url,
)

/**
 * The spans of one collector endpoint. The OpenTelemetry SDK (its BatchSpanProcessor and OTLP/HTTP
 * exporter) runs in a worker thread: run in this thread, its node:http client and streams met the same
 * Node functions the data path runs on every request, and the rare export turned their optimized code
 * generic for every request (bench/results/instructions-2026-12-07-tracing.md). Adding never waits: with
 * maxQueueSize spans queued (here or in the thread) a span is dropped and counted.
 */
export class OtlpSpanSink implements SpanSink {
  readonly #worker: Worker
  readonly #counters: SpanCounters
  #pending: FinishedSpan[] = []
  #timer: NodeJS.Timeout | undefined
  /** Spans posted to the thread that it has not reported on yet. */
  #inThread = 0
  #closed: Promise<void> | undefined
  #onClosed: (() => void) | undefined

  constructor(
    endpoint: string,
    resourceAttributes: ExportThreadData['resourceAttributes'],
    counters: SpanCounters,
  ) {
    this.#counters = counters
    const workerData: ExportThreadData = { endpoint, resourceAttributes }
    this.#worker = new Worker(threadScript, { workerData })
    this.#worker.unref()
    this.#worker.on('message', (report: ExportReport) => {
      this.#inThread -= report.sent + report.dropped
      if (report.sent > 0) counters.sent(report.sent)
      if (report.dropped > 0) counters.dropped(report.dropped)
      if (report.closed === true) this.#onClosed?.()
    })
    this.#worker.on('error', (error) => log.error(`tracing: the span export thread failed: ${error.message}`))
    this.#worker.once('exit', () => {
      if (this.#inThread > 0) counters.dropped(this.#inThread)
      this.#inThread = 0
      this.#onClosed?.()
    })
  }

  add(span: FinishedSpan): void {
    if (this.#closed !== undefined || this.#pending.length + this.#inThread >= maxQueueSize) {
      this.#counters.dropped(1)
      return
    }
    this.#pending.push(span)
    if (this.#pending.length >= handOffBatch) this.#handOff()
    else this.#timer ??= setTimeout(() => this.#handOff(), handOffDelayMs).unref()
  }

  #handOff(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#pending.length === 0) return
    const spans = this.#pending
    this.#pending = []
    this.#inThread += spans.length
    this.#worker.postMessage({ type: 'spans', spans } satisfies SinkMessage)
  }

  /** Posts what waits, lets the thread export its queue, then ends the thread. */
  shutdown(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#onClosed = resolve
      this.#handOff()
      this.#worker.postMessage({ type: 'shutdown' } satisfies SinkMessage)
    }).then(() => this.#worker.terminate().then(() => undefined))
    return this.#closed
  }
}
