// The OTLP/HTTP exporter's transport: each export request POSTed to the collector over one undici Client of the exporter's own.

import type { ExportResponse, IExporterTransport } from '@opentelemetry/otlp-exporter-base'
import { OTLPExporterError } from '@opentelemetry/otlp-exporter-base'
import type { Client } from 'undici'
import { loadPrivateUndici } from './private-undici.ts'

/** The SDK's node:http transport reads at most this much of a response (otlp-exporter-base MAX_RESPONSE_BODY_SIZE). */
const maxResponseBytes = 4 * 1024 * 1024

/** Loaded with this module, which the tracing observer imports only when a model traces. */
const undici = loadPrivateUndici()

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

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    try {
      const response = await this.#client.request({
        method: 'POST',
        path: this.#path,
        headers: this.#headers,
        body: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        signal: AbortSignal.timeout(timeoutMillis),
      })
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length
        if (size > maxResponseBytes) {
          response.body.destroy()
          return {
            status: 'failure',
            error: new Error(`the collector's answer exceeds ${maxResponseBytes} bytes`),
          }
        }
        chunks.push(chunk)
      }
      const body = Buffer.concat(chunks)
      if (response.statusCode <= 299) return { status: 'success', data: body }
      return {
        status: 'failure',
        error: new OTLPExporterError(
          `the collector answered ${response.statusCode}`,
          response.statusCode,
          body.toString(),
        ),
      }
    } catch (error) {
      return { status: 'failure', error: error instanceof Error ? error : new Error(String(error)) }
    }
  }

  shutdown(): void {
    void this.#client.destroy()
  }
}
