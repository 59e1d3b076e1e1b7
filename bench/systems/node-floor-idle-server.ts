// The Node floor of an idle connection: a bare node:http, node:http2 (h2c) or node:https (mesh mTLS) server that answers 1 KiB itself.
//
// `node node-floor-idle-server.ts <http1|http2|mtls> <port> [<certificate dir>]`: what node itself keeps per
// keep-alive connection, for bench/micro/connection-heap.ts and bench/footprint.ts to compare Outrigger with
// (bench/systems/node-floor-process.ts starts it). The mTLS server requires and verifies a client certificate
// and selects ALPN istio-http/1.1, as an inbound sidecar with STRICT does, with the proxy's TLS versions, suites and
// curves (src/tls/tls-defaults.ts: the same handshake), ALPN by a callback as Outrigger selects it
// (src/tls/mtls-terminator.ts: a server's `ALPNProtocols` list is copied into every TLSSocket from the Buffer
// pool, and those copies keep pool slabs alive, about 1.7 KiB per idle connection that is not node's floor).

import { readFileSync } from 'node:fs'
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttp2, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import { createServer as createHttps } from 'node:https'
import { join } from 'node:path'
import { loadMallocTrim, type MallocTrim } from '../../src/runtime/malloc-trim.ts'
import { collectAllAvailableGarbage } from '../../src/runtime/memory-reducing-collection.ts'
import { MODERN_TLS } from '../../src/tls/tls-defaults.ts'

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

function selectIstioHttp1({ protocols }: { protocols: string[] }): string | undefined {
  return protocols.includes('istio-http/1.1') ? 'istio-http/1.1' : undefined
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
            ...MODERN_TLS,
            key: readFileSync(join(certs ?? '', 'key.pem')),
            cert: readFileSync(join(certs ?? '', 'cert-chain.pem')),
            ca: readFileSync(join(certs ?? '', 'root-cert.pem')),
            requestCert: true,
            rejectUnauthorized: true,
            ALPNCallback: selectIstioHttp1,
          },
          answer,
        )
      : createHttp(idle, answer)
/** glibc's malloc_trim, loaded now (koffi's own RSS, about 5.6 MiB, before any reading); undefined where it cannot be (not glibc). */
const trim = ((): MallocTrim | undefined => {
  try {
    return loadMallocTrim()
  } catch {
    return undefined
  }
})()

/**
 * What the proxy's idle trim does (src/runtime/idle-trim.ts), at once: V8's memory-reducing collection (it shrinks
 * the young generation; needs --expose-gc, which the proxy's node flags give) and malloc_trim. A reader calls it
 * through the inspector before each reading (bench/workloads/footprint-case.ts), so that the floor is what node
 * keeps, not what a collection or the allocator would give back.
 */
Object.assign(globalThis, {
  async reduceMemory(): Promise<void> {
    await collectAllAvailableGarbage()
    trim?.()
  },
})

server.listen(port, '127.0.0.1', () => process.stdout.write(`listening on ${port}\n`))
