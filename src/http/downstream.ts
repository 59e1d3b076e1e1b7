// What the filters and the router see of a downstream request and its response, whatever the codec (h1 or h2).

import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'

/**
 * The request side. node:http's IncomingMessage is one; an HTTP/2 stream is adapted to it
 * (src/http/http2-request.ts), with `:authority` as the first `host` header and no pseudo-headers.
 */
export interface DownstreamRequest {
  readonly method?: string | undefined
  /** The request target: path and query (normalized in place before routing: RequestContext.rewriteUrl). */
  url?: string | undefined
  /** Name, value, name, value… as received (HTTP/1 case preserved; HTTP/2 names are lowercase). */
  readonly rawHeaders: string[]
  readonly headers: IncomingHttpHeaders
  /** True once the whole request body has been received. */
  readonly complete: boolean
  /** The connection (for HTTP/2, the session's socket: read its addresses only). */
  readonly socket: Socket
  /** 1 or 2. */
  readonly httpVersionMajor: number
  /** 0 or 1 on HTTP/1 (node:http's IncomingMessage has it). */
  readonly httpVersionMinor?: number
  /**
   * True for a request that asks to switch protocols and is to be tunnelled: an HTTP/1.1 `Connection: upgrade`
   * that node:http delivered through its `upgrade` event (server.ts's handleUpgradeRequest sets it), or an
   * HTTP/2 extended CONNECT. Otherwise false or undefined.
   */
  readonly upgrade?: boolean
}

/** The response side: node:http's ServerResponse, or the HTTP/2 stream's adapter (src/http/http2-response.ts). */
export interface DownstreamResponse {
  /** True once the proxy committed to a status (a local reply is no longer possible). */
  readonly headersSent: boolean
  readonly destroyed: boolean
  readonly writableEnded: boolean
  /** True once the whole response has been handed to the connection (not when the client left first). */
  readonly writableFinished: boolean
  /**
   * True once the client reset this stream (HTTP/2 RST_STREAM) on a connection that lives on; undefined or
   * false on HTTP/1.1, where a client can only close its connection.
   */
  readonly resetByClient?: boolean
  readonly statusCode: number
  writeHead(status: number, headers: string[]): unknown
  /** Interim responses before `writeHead` (node:http's names): 100 Continue, 102 Processing, 103 Early Hints. */
  writeContinue(): void
  writeProcessing(): void
  writeEarlyHints(hints: Record<string, string | string[]>): void
  /** False when the client is not keeping up: wait for 'drain'. */
  write(chunk: Buffer): boolean
  end(body?: string | Buffer): unknown
  /** Trailers to send after the body (HTTP/2, or a chunked HTTP/1.1 response). */
  addTrailers(trailers: Record<string, string | string[]>): void
  /** Abandons the response: an HTTP/2 stream is reset, an HTTP/1 connection closed. */
  destroy(): unknown
  on(event: 'close' | 'drain', listener: () => void): unknown
  once(event: 'close' | 'drain', listener: () => void): unknown
  off(event: 'close' | 'drain', listener: () => void): unknown
}
