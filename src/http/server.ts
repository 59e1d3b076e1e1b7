// The downstream HTTP/1.1 server of one listener: every request enters the filter chain here.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { ListenerRuntime } from '../listener/listener-runtime.ts'
import { resumeFilters } from './filter-chain.ts'
import { RequestContext } from './request-context.ts'
import { sendResponse } from './respond.ts'

/** Envoy's default limit on request headers (60 KiB); larger requests get 431. */
const maxHeaderSize = 60 * 1024

export function createHttpServer(listener: ListenerRuntime): Server {
  const server = createServer(
    {
      maxHeaderSize,
      keepAliveTimeout: 300_000,
      // Bodies may stream for as long as they need; the route timeout is the proxy's clock.
      requestTimeout: 0,
      headersTimeout: 60_000,
      noDelay: true,
    },
    (req, res) => handleRequest(listener, req, res),
  )
  return server
}

export function handleRequest(listener: ListenerRuntime, req: IncomingMessage, res: ServerResponse): void {
  const ctx = new RequestContext(req, res, listener, listener.proxyModel)
  try {
    resumeFilters(ctx)
  } catch (err) {
    // A bug must cost one request, never the process.
    process.emitWarning(err as Error)
    ctx.responseCodeDetails = 'internal_error'
    sendResponse(ctx, 500, 'internal error')
  }
}
