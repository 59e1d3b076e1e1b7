// The Node floor of an idle connection: a bare node:http, node:http2 (h2c) or node:https (mesh mTLS) server that answers 1 KiB itself.
//
// `node node-floor-idle-server.ts <http1|http2|mtls> <port> [<certificate dir>]`: what node itself keeps per
// keep-alive connection, for bench/micro/connection-heap.ts to compare Outrigger with. The mTLS server
// asks for a client certificate and offers ALPN istio-http/1.1, as an inbound sidecar with STRICT does.

import { readFileSync } from 'node:fs'
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttp2, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import { createServer as createHttps } from 'node:https'
import { join } from 'node:path'

const [protocol, portText, certs] = process.argv.slice(2, 5)
const port = Number(portText)
const body = Buffer.alloc(1024, 'x')

const headers = { 'content-type': 'application/octet-stream', 'content-length': body.length }

function answer(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, headers)
  res.end(body)
}

function answerHttp2(_req: Http2ServerRequest, res: Http2ServerResponse): void {
  res.writeHead(200, headers)
  res.end(body)
}

// The proxy keeps idle connections for an hour (bootstrap idleTimeout); node:http's default 5 s would close them.
const idle = { keepAliveTimeout: 3_600_000, requestTimeout: 0, headersTimeout: 60_000 }
const server =
  protocol === 'http2'
    ? createHttp2(answerHttp2)
    : protocol === 'mtls'
      ? createHttps(
          {
            ...idle,
            key: readFileSync(join(certs ?? '', 'key.pem')),
            cert: readFileSync(join(certs ?? '', 'cert-chain.pem')),
            ca: readFileSync(join(certs ?? '', 'root-cert.pem')),
            requestCert: true,
            rejectUnauthorized: true,
            ALPNProtocols: ['istio-http/1.1'],
          },
          answer,
        )
      : createHttp(idle, answer)
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening on ${port}\n`))
