// Scenario: gRPC deadlines as Istio configures Envoy: inbound max_stream_duration from the headers, outbound max_grpc_timeout.

import {
  type ClientHttp2Session,
  constants,
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
} from 'node:http2'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { grpcFrame, h2Session } from './harness/grpc.ts'
import { loopbackIngress, serviceEntry, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { sumOf } from './harness/prometheus-text.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'

const DEADLINE_EXCEEDED = 4

let proxy: ProxyProcess
let app: Http2Server
let appPort: number
const appSessions = new Set<Http2Session>()
/** Request headers the app saw, by path. */
const seen = new Map<string, IncomingHttpHeaders>()
let ingress: number
let egress: number

beforeAll(async () => {
  // Answers grpc-status 0 as soon as the request body ends (a client-streaming call).
  app = createServer()
  app.on('session', (session: Http2Session) => {
    appSessions.add(session)
    session.on('close', () => appSessions.delete(session))
  })
  app.on('stream', (stream, headers) => {
    seen.set(String(headers[':path']), headers)
    stream.on('error', () => {})
    stream.resume()
    stream.on('end', () => {
      if (stream.closed) return
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' },
        { endStream: true },
      )
    })
  })
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  appPort = (app.address() as AddressInfo).port
  ;[ingress, egress] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({
        egress: [{ port: egress, protocol: 'HTTP', name: 'http' }],
        ingress: [loopbackIngress(ingress, appPort, 'GRPC', 'grpc')],
      }),
      'service.yaml': serviceEntry({
        name: 'uploads',
        ports: [{ number: 50051, name: 'grpc', protocol: 'GRPC', targetPort: appPort }],
      }),
    },
  })
  const res = await proxy.admin('/logging?level=debug', { method: 'POST' })
  expect(res.status).toBe(200)
})

afterAll(async () => {
  await proxy?.stop()
  for (const session of appSessions) session.destroy()
  await new Promise<void>((resolve) => app?.close(() => resolve()))
})

interface Outcome {
  readonly headers: IncomingHttpHeaders
  readonly trailers: IncomingHttpHeaders | undefined
  /** From the request to the response headers. */
  readonly ms: number
}

/** A client-streaming call that sends one message and ends its body only after `endAfterMs`. */
function slowUpload(
  session: ClientHttp2Session,
  path: string,
  grpcTimeout: string,
  endAfterMs: number,
): Promise<Outcome> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      ':authority': 'uploads:50051',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': grpcTimeout,
    })
    stream.write(grpcFrame({ text: 'part' }))
    const ender = setTimeout(() => stream.end(), endAfterMs)
    const limit = setTimeout(() => {
      stream.close(constants.NGHTTP2_CANCEL)
      reject(new Error('no answer within 5 s'))
    }, 5_000)
    let headers: IncomingHttpHeaders = {}
    let trailers: IncomingHttpHeaders | undefined
    let ms = -1
    stream.on('response', (h) => {
      headers = h
      ms = performance.now() - started
    })
    stream.on('trailers', (t) => {
      trailers = t
    })
    stream.resume()
    stream.on('error', () => {})
    stream.on('close', () => {
      clearTimeout(ender)
      clearTimeout(limit)
      resolve({ headers, trailers, ms })
    })
  })
}

async function summary(path: string): Promise<string> {
  const find = () =>
    proxy
      .stderr()
      .split('\n')
      .find((line) => line.includes(' request ') && line.includes(`${path} `))
  for (let i = 0; i < 100 && find() === undefined; i++) await new Promise((r) => setTimeout(r, 20))
  return find() ?? ''
}

describe('gRPC deadlines', () => {
  it('inbound: grpc-timeout counts from the request headers (max_stream_duration), not from the body end', async () => {
    const session = await h2Session(ingress)
    try {
      // The body is still open when the 300 ms run out; the router's timeout would not have started yet.
      const outcome = await slowUpload(session, '/test.Upload/Inbound', '300m', 2_000)
      expect(outcome.headers[':status']).toBe(200)
      expect(outcome.headers['grpc-status']).toBe(String(DEADLINE_EXCEEDED))
      expect(outcome.headers['grpc-message']).toBe('downstream duration timeout')
      expect(outcome.ms).toBeGreaterThanOrEqual(250)
      expect(outcome.ms).toBeLessThan(1_500)
      // Envoy's details, and no response flag (ActiveStream::onStreamMaxDurationReached sets none).
      expect(await summary('/test.Upload/Inbound')).toMatch(/flags=- details=max_duration_timeout /)
      // Envoy rewrites grpc-timeout to the deadline it keeps, in milliseconds (toGrpcTimeout).
      expect(seen.get('/test.Upload/Inbound')?.['grpc-timeout']).toBe('300m')
      // Counted as the connection manager's downstream_rq_max_duration_reached, on /stats and /stats/prometheus.
      const stats = await (await proxy.admin('/stats')).text()
      const line = new RegExp(
        `^(http\\.inbound_.*_${ingress}\\.downstream_rq_max_duration_reached): (\\d+)$`,
        'm',
      ).exec(stats)
      expect(line?.[2]).toBe('1')
      const prometheus = await (await fetch(`http://127.0.0.1:${proxy.statsPort}/stats/prometheus`)).text()
      expect(sumOf(prometheus, `envoy_${(line?.[1] ?? '').replace(/[^a-zA-Z0-9_]/g, '_')}`)).toBe(1)
    } finally {
      session.close()
    }
  })

  it("outbound: Istio's max_grpc_timeout, the router's timeout, starts once the request has been read", async () => {
    const session = await h2Session(egress)
    try {
      const outcome = await slowUpload(session, '/test.Upload/Outbound', '1S', 600)
      expect(outcome.headers[':status']).toBe(200)
      expect(outcome.headers['grpc-status']).toBe('0')
      expect(outcome.ms).toBeGreaterThanOrEqual(550)
      expect(seen.get('/test.Upload/Outbound')?.['grpc-timeout']).toBe('1S')
    } finally {
      session.close()
    }
  })
})
