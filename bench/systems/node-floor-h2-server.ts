// The Node floor for HTTP/2 and gRPC: node:http2 in, one node:http2 session out per upstream, streams and trailers forwarded, nothing else.
//
// Arguments: <h2 listen port> <h2 upstream port> <grpc listen port> <grpc upstream port>. What any Node
// proxy pays per stream before it routes or adds a header: Outrigger ÷ this is the cost of its features.

import {
  type ClientHttp2Session,
  connect,
  constants,
  createServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2'

const [h2Port, h2Upstream, grpcPort, grpcUpstream] = process.argv.slice(2, 6).map(Number)

/** One session to `port`, opened again when the last one closes. */
function upstreamSession(port: number): () => ClientHttp2Session {
  let session: ClientHttp2Session | undefined
  return () => {
    if (session === undefined || session.closed || session.destroyed) {
      session = connect(`http://127.0.0.1:${port}`)
      session.on('error', () => {})
    }
    return session
  }
}

/** A copy of received header fields (request, response or trailers) to send on: pseudo-headers included, none of them connection-specific over HTTP/2. */
function copyHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) out[name] = headers[name]
  return out
}

function proxy(listenPort: number, upstreamPort: number): void {
  const session = upstreamSession(upstreamPort)
  const server = createServer({ settings: { maxConcurrentStreams: 1000 } })
  server.on('stream', (down: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    down.on('error', () => {})
    const up = session().request(copyHeaders(headers), { endStream: down.endAfterHeaders })
    up.on('error', () => {})
    if (!down.endAfterHeaders) down.pipe(up)
    let trailers: IncomingHttpHeaders | undefined
    up.on('response', (response) => {
      if (down.destroyed) return
      down.respond(copyHeaders(response), { waitForTrailers: true })
      up.pipe(down)
    })
    up.on('trailers', (t) => {
      trailers = t
    })
    down.on('wantTrailers', () => down.sendTrailers(trailers === undefined ? {} : copyHeaders(trailers)))
    up.on('close', () => {
      if (!down.destroyed && !down.headersSent) down.close(constants.NGHTTP2_INTERNAL_ERROR)
    })
    down.on('close', () => {
      if (!up.destroyed) up.close(constants.NGHTTP2_CANCEL)
    })
  })
  server.on('sessionError', () => {})
  server.listen(listenPort, '127.0.0.1')
}

proxy(h2Port, h2Upstream)
proxy(grpcPort, grpcUpstream)
