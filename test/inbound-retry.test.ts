// Scenario: Istio's default inbound retry policy, 2 retries on reset-before-request (route.BuildDefaultHTTPInboundRoute).

import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { loopbackIngress, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'

let proxy: ProxyProcess
/** An app that resets each connection once a request has arrived on it, before answering. */
let resetting: Server
let resetConnections = 0
let refusedHttp: number
let refusedGrpc: number
let resetPort: number
let closedApp: number

beforeAll(async () => {
  resetting = createServer((socket: Socket) => {
    resetConnections++
    socket.once('data', () => socket.resetAndDestroy())
  })
  await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve))
  const address = resetting.address()
  const appPort = typeof address === 'object' && address !== null ? address.port : 0
  ;[refusedHttp, refusedGrpc, resetPort, closedApp] = await freePorts(4)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({
        ingress: [
          loopbackIngress(refusedHttp, closedApp, 'HTTP', 'http-refused'),
          loopbackIngress(refusedGrpc, closedApp, 'GRPC', 'grpc-refused'),
          loopbackIngress(resetPort, appPort, 'HTTP', 'http-reset'),
        ],
      }),
    },
  })
  const res = await proxy.admin('/logging?level=debug', { method: 'POST' })
  expect(res.status).toBe(200)
})

afterAll(async () => {
  await proxy?.stop()
  await new Promise<void>((resolve) => resetting?.close(() => resolve()))
})

/** The proxy's debug summary line of the request for `host` + `path`. */
async function summary(host: string, path: string): Promise<string> {
  const find = () =>
    proxy
      .stderr()
      .split('\n')
      .find((line) => line.includes(' request ') && line.includes(` ${host}${path} `))
  for (let i = 0; i < 100 && find() === undefined; i++) await new Promise((r) => setTimeout(r, 20))
  return find() ?? ''
}

describe("inbound retries (Istio's default inbound policy: reset-before-request, 2 retries)", () => {
  it('tries a request the app never received three times, a POST included, then answers 503 UF,URX', async () => {
    const get = await send(refusedHttp, 'app', '/get')
    expect(get.status).toBe(503)
    expect(await summary('app', '/get')).toMatch(/flags=UF,URX .* attempts=3 /)
    const post = await send(refusedHttp, 'app', '/post', { method: 'POST', body: 'never sent' })
    expect(post.status).toBe(503)
    expect(await summary('app', '/post')).toMatch(/flags=UF,URX .* attempts=3 /)
  })

  it('does not retry a request the app received before resetting (it may have acted on it)', async () => {
    const before = resetConnections
    const reply = await send(resetPort, 'app', '/reset', { method: 'POST', body: 'once only' })
    expect(reply.status).toBe(503)
    expect(reply.body).toContain('connection termination')
    expect(await summary('app', '/reset')).toMatch(/flags=UC .* attempts=1 /)
    expect(resetConnections - before).toBe(1)
  })

  it('leaves gRPC ports without it, as Istio does', async () => {
    const reply = await send(refusedGrpc, 'app', '/grpc-port')
    expect(reply.status).toBe(503)
    expect(await summary('app', '/grpc-port')).toMatch(/flags=UF .* attempts=1 /)
  })
})
