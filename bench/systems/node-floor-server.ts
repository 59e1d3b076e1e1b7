// The Node floor: the least a Node proxy can do per request (node:http in, undici dispatch out, no features).
// With `envoy-headers` it also adds the headers an Envoy sidecar adds (what Outrigger must add to match Istio).

import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { type Dispatcher, Pool } from 'undici'
import { newRequestId } from '../../src/http/request-id.ts'

const [listenPort, upstreamPort] = process.argv.slice(2, 4).map(Number)
/** x-forwarded-proto and x-request-id on the request, x-envoy-upstream-service-time on the response. */
const envoyHeaders = process.argv[4] === 'envoy-headers'
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, {
  headersTimeout: 0,
  bodyTimeout: 0,
  pipelining: 1,
})
const hop = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'te',
  'expect',
  'proxy-connection',
])

/**
 * Streams the upstream response to the client; no routing, no header edits, no timeouts, no telemetry.
 * It does what Outrigger does to spend less per request: the headers come from undici's parsed fields
 * (no second decoding of rawHeaders), and the chunk that completes a declared length ends the response.
 */
class Forward implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse
  readonly #dispatchedAt: number
  #bodyLeft = -1
  #lastChunk: Buffer | undefined
  constructor(res: ServerResponse) {
    this.#res = res
    this.#dispatchedAt = envoyHeaders ? performance.now() : 0
  }
  onRequestStart(): void {}
  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    fields: IncomingHttpHeaders,
  ): void {
    const headers: string[] = []
    for (const name in fields) {
      const value = fields[name]
      if (value === undefined || hop.has(name)) continue
      if (typeof value === 'string') headers.push(name, value)
      else for (const one of value) headers.push(name, one)
    }
    if (envoyHeaders)
      headers.push(
        'x-envoy-upstream-service-time',
        String(Math.round(performance.now() - this.#dispatchedAt)),
      )
    this.#res.writeHead(status, headers)
    const length = fields['content-length']
    if (typeof length === 'string') this.#bodyLeft = Number(length)
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#bodyLeft > 0) {
      this.#bodyLeft -= chunk.length
      if (this.#bodyLeft === 0) {
        this.#lastChunk = chunk
        return
      }
    }
    if (!this.#res.write(chunk)) {
      controller.pause()
      this.#res.once('drain', () => controller.resume())
    }
  }
  onResponseEnd(): void {
    this.#res.end(this.#lastChunk)
  }
  onResponseError(): void {
    this.#res.destroy()
  }
}

createServer({ keepAliveTimeout: 300_000 }, (req, res) => {
  const raw = req.rawHeaders
  const headers: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (!hop.has(name)) headers.push(name, raw[i + 1])
  }
  if (envoyHeaders) headers.push('x-forwarded-proto', 'http', 'x-request-id', newRequestId())
  pool.dispatch({ method: req.method as 'GET', path: req.url ?? '/', headers, body: null }, new Forward(res))
}).listen(listenPort, '127.0.0.1')
