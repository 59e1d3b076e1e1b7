// Real HTTP/1.1 upstream servers on loopback for scenario tests; the default one echoes what it received.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Upstream {
  readonly server: Server
  readonly port: number
  readonly name: string
  /** Requests seen, in order. */
  readonly seen: { method: string; url: string; headers: IncomingMessage['headers'] }[]
  close(): Promise<void>
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** Answers 200 with JSON {name, method, url, headers} and `x-upstream: <name>`. */
export function echo(name: string): Handler {
  return (req, res) => {
    const body = JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers })
    req.resume()
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-upstream': name,
      })
      res.end(body)
    })
  }
}

/** Reads the request, then answers 200 with `body` after `delayMs`: a slow upstream. */
export function answerAfter(delayMs: number, body: string): Handler {
  return (req, res) => {
    req.resume()
    setTimeout(() => res.end(body), delayMs)
  }
}

/** `host` is the loopback address to bind (127.0.0.2 and up let several share a port, as DNS hosts do). */
export async function startUpstream(
  name: string,
  handler: Handler = echo(name),
  port = 0,
  host = '127.0.0.1',
): Promise<Upstream> {
  const seen: Upstream['seen'] = []
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    handler(req, res)
  })
  server.keepAliveTimeout = 10_000
  await new Promise<void>((resolve) => server.listen(port, host, resolve))
  return {
    server,
    port: (server.address() as AddressInfo).port,
    name,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
