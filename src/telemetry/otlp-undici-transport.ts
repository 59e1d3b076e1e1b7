// The OTLP/HTTP exporter's transport: each export request POSTed to the collector over one undici Client of the exporter's own.

import type { ExportResponse, IExporterTransport } from '@opentelemetry/otlp-exporter-base'
import { OTLPExporterError } from '@opentelemetry/otlp-exporter-base'
import type { Client, Dispatcher } from 'undici'
import { loadPrivateUndici } from './private-undici.ts'

/** The SDK's node:http transport reads at most this much of a response (otlp-exporter-base MAX_RESPONSE_BODY_SIZE). */
const maxResponseBytes = 4 * 1024 * 1024

/** Loaded with this module, which the tracing observer imports only when a model traces. */
const undici = loadPrivateUndici()

class ExportTimeoutError extends Error {
  constructor(timeoutMillis: number) {
    super(`the collector did not answer within ${timeoutMillis} ms`)
  }
}

/**
 * One export request: a dispatch handler (no response stream, so no stream class of its own meets the
 * Readable code the data path's sockets run) that settles once, with the collector's answer, an error, or
 * the export timeout (which aborts the request, or drops it before it starts if it still waits for a connection).
 */
class ExportRequest implements Dispatcher.DispatchHandler {
  readonly #settle: (response: ExportResponse) => void
  readonly #timer: NodeJS.Timeout
  #controller: Dispatcher.DispatchController | undefined
  #settled = false
  #status = 0
  #chunks: Buffer[] = []
  #size = 0

  constructor(settle: (response: ExportResponse) => void, timeoutMillis: number) {
    this.#settle = settle
    this.#timer = setTimeout(() => this.#timedOut(timeoutMillis), timeoutMillis).unref()
  }

  #timedOut(timeoutMillis: number): void {
    const error = new ExportTimeoutError(timeoutMillis)
    if (this.#controller !== undefined) this.#controller.abort(error)
    else this.#finish({ status: 'failure', error })
  }

  #finish(response: ExportResponse): void {
    if (this.#settled) return
    this.#settled = true
    clearTimeout(this.#timer)
    this.#settle(response)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#settled) controller.abort(new ExportTimeoutError(0))
    else this.#controller = controller
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.#status = statusCode
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#size += chunk.length
    if (this.#size > maxResponseBytes)
      controller.abort(new Error(`the collector's answer exceeds ${maxResponseBytes} bytes`))
    else this.#chunks.push(chunk)
  }

  onResponseEnd(): void {
    const body = Buffer.concat(this.#chunks)
    if (this.#status <= 299) this.#finish({ status: 'success', data: body })
    else
      this.#finish({
        status: 'failure',
        error: new OTLPExporterError(`the collector answered ${this.#status}`, this.#status, body.toString()),
      })
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#finish({ status: 'failure', error })
  }
}

/**
 * An `IExporterTransport` (otlp-exporter-base's interface: `send(data, timeoutMillis)`, `shutdown()`) over one
 * connection to the collector: exports wait in the Client's queue, the delegate bounds how many, and each
 * one ends within `timeoutMillis` (connecting, sending and reading the answer). A 2xx answer is a success and
 * anything else a failure, with no retry: the SDK's retrying transport is not exported, and the next batch
 * follows within a second.
 */
export class UndiciExporterTransport implements IExporterTransport {
  readonly #client: Client
  readonly #path: string
  readonly #headers: Record<string, string>

  constructor(endpoint: string, contentType: string) {
    const url = new URL(endpoint)
    this.#client = new undici.Client(url.origin, { pipelining: 1 })
    this.#path = `${url.pathname}${url.search}`
    this.#headers = { 'content-type': contentType, 'user-agent': 'outrigger' }
  }

  send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    return new Promise((settle) => {
      const request = new ExportRequest(settle, timeoutMillis)
      const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      this.#client.dispatch({ method: 'POST', path: this.#path, headers: this.#headers, body }, request)
    })
  }

  shutdown(): void {
    this.#client.destroy().catch(() => undefined)
  }
}
