// The Node floor: the least a Node proxy can do per request (node:http in, undici dispatch out, no features).
// With `envoy-headers` it also adds the headers an Envoy sidecar adds (what Outrigger must add to match Istio).

import { createServer, type ServerResponse } from 'node:http'
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

/** Streams the upstream response to the client; no routing, no header edits, no timeouts, no telemetry. */
class Forward implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse
  readonly #dispatchedAt: number
  constructor(res: ServerResponse) {
    this.#res = res
    this.#dispatchedAt = envoyHeaders ? performance.now() : 0
  }
  onRequestStart(): void {}
  onResponseStart(controller: Dispatcher.DispatchController, status: number): void {
    const raw = controller.rawHeaders as Buffer[]
    const headers: string[] = []
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1').toLowerCase()
      if (!hop.has(name)) headers.push(name, raw[i + 1].toString('latin1'))
    }
    if (envoyHeaders)
      headers.push(
        'x-envoy-upstream-service-time',
        String(Math.round(performance.now() - this.#dispatchedAt)),
      )
    this.#res.writeHead(status, headers)
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      controller.pause()
      this.#res.once('drain', () => controller.resume())
    }
  }
  onResponseEnd(): void {
    this.#res.end()
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
