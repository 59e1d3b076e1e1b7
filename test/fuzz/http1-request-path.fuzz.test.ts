// Fuzz target: hostile HTTP/1.1 requests on raw sockets through a real proxy process: no crash, every connection answered or closed in bounded time, 4xx for what RFC 9112 says to refuse, and nothing smuggled to the app.

import { connect } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { egressSidecar, loopbackService, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'
import { fuzzParameters, fuzzTimeout } from './fuzz-budget.ts'
import { requestShape, type WireRequest, wireRequest } from './hostile-http1.ts'
import { fieldOf, readResponses } from './http1-responses.ts'

/**
 * How long a connection may go without its answers: the proxy's request-headers and stream idle timeouts
 * are 1 s here, so a request waiting for bytes that never come is answered (408) or closed by then.
 */
const CONNECTION_BOUND_MS = 4_000

/** A request the app received. */
interface AppRequest {
  readonly marker: string
  readonly url: string
  readonly contentLength: boolean
  readonly transferEncoding: boolean
  /** The whole body arrived (the request was complete). */
  complete: boolean
}

let proxy: ProxyProcess
let app: Upstream
let egress: number
const appRequests: AppRequest[] = []
/** Requests the app's own parser refused: bytes the proxy sent that are not HTTP/1.1 (a desync). */
const appParseErrors: string[] = []

beforeAll(async () => {
  ;[egress] = await freePorts(1)
  app = await startUpstream('app', (req, res) => {
    const seen: AppRequest = {
      marker: String(req.headers['x-fuzz-marker'] ?? ''),
      url: req.url ?? '',
      contentLength: req.headers['content-length'] !== undefined,
      transferEncoding: req.headers['transfer-encoding'] !== undefined,
      complete: false,
    }
    appRequests.push(seen)
    req.resume()
    req.on('end', () => {
      seen.complete = true
      res.writeHead(200, { 'x-app-marker': seen.marker, 'content-type': 'text/plain' })
      res.end(`app saw ${seen.marker}`)
    })
  })
  app.server.on('clientError', (error: Error, socket) => {
    appParseErrors.push(error.message)
    socket.destroy()
  })
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': yamlStream(loopbackService('app', 80, app.port)),
    },
    extraBootstrap: `limits:
  requestHeadersTimeout: 1s
  streamIdleTimeout: 1s
  idleTimeout: 2s
`,
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

/** Writes `bytes` on a new connection; resolves with what came back when it closed, or when `enough` says so, or at the bound. */
function exchange(
  bytes: string,
  enough: (wire: string) => boolean,
): Promise<{ wire: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(egress, '127.0.0.1')
    let wire = ''
    const finish = (closed: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ wire, closed })
    }
    const timer = setTimeout(() => finish(false), CONNECTION_BOUND_MS)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      wire += chunk
      if (enough(wire)) finish(false)
    })
    socket.on('close', () => finish(true))
    socket.on('error', () => {
      // A reset is a close; 'close' follows.
    })
    socket.write(Buffer.from(bytes, 'latin1'))
  })
}

let run = 0

describe('HTTP/1.1 request path fuzz', () => {
  it(
    'answers or closes every hostile connection in time, refuses what RFC 9112 refuses, and smuggles nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(requestShape, { minLength: 1, maxLength: 3 }), async (shapes) => {
          const id = `r${process.pid}-${run++}`
          const requests: WireRequest[] = shapes.map((shape, i) =>
            wireRequest(shape, `${id}-${i}`, `${id}-smuggled`),
          )
          // Answers expected before the connection may end: up to and including the first refused request.
          const refusedAt = requests.findIndex((r) => r.refusal !== 'none')
          const expected = refusedAt === -1 ? requests.length : refusedAt + 1
          const noBody = (i: number): boolean => requests[i]?.head === true
          const { wire, closed } = await exchange(
            requests.map((r) => r.bytes).join(''),
            (sofar) => readResponses(sofar, noBody, false).responses.length >= expected,
          )

          // Every byte back is part of a whole, well-formed response (RFC 9112 §2.1), or the connection
          // closed before any (within the bound: a hang is caught by `closed` and the count below).
          const { responses, problem } = readResponses(wire, noBody, closed)
          expect(
            problem,
            `${JSON.stringify(requests.map((r) => r.bytes.slice(0, 300)))} → ${wire.slice(0, 500)}`,
          ).toBeUndefined()
          expect(
            closed || responses.length >= expected,
            `neither closed nor answered: ${wire.slice(0, 300)}`,
          ).toBe(true)

          // A refused request gets a 4xx (or the connection closes without an answer for it).
          if (refusedAt !== -1 && responses.length > refusedAt) {
            const status = responses[refusedAt].status
            expect(status >= 400 && status < 500, `status ${status} for refused request ${refusedAt}`).toBe(
              true,
            )
          }

          // Let the app's side settle: a request the proxy forwarded is there before its answer came back.
          await new Promise((r) => setTimeout(r, 20))
          const seen = appRequests.filter((r) => r.marker.startsWith(`${id}-`))
          const answered = new Set(responses.map((r) => fieldOf(r, 'x-app-marker')))
          for (const request of seen) {
            // RFC 9112 §6.1: a message with both is never forwarded as such (the app would frame it differently).
            expect(
              request.contentLength && request.transferEncoding,
              `CL and TE at the app: ${request.marker}`,
            ).toBe(false)
            expect(request.marker, 'a smuggled request reached the app').not.toBe(`${id}-smuggled`)
            const index = Number(request.marker.slice(id.length + 1))
            expect(
              Number.isInteger(index) && index < requests.length,
              `unknown marker ${request.marker}`,
            ).toBe(true)
            if (refusedAt !== -1) {
              const refusal = requests[refusedAt].refusal
              if (refusal === 'head')
                expect(index, 'a request at or after a refused head reached the app').toBeLessThan(refusedAt)
              else expect(index <= refusedAt && !(index === refusedAt && request.complete)).toBe(true)
            }
            // The app never answers a request the client does not hear about.
            if (request.complete)
              expect(
                answered.has(request.marker),
                `app answered ${request.marker}, the client never heard`,
              ).toBe(true)
          }
          expect(appParseErrors).toEqual([])

          // The proxy is alive and ready.
          expect(proxy.child.exitCode).toBeNull()
          expect((await proxy.admin('/ready')).status).toBe(200)
        }),
        fuzzParameters('http1-request-path', 80),
      )
    },
    fuzzTimeout(60_000),
  )
})
