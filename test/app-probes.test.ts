// Scenario: the health port runs the app's own kubelet probes from ISTIO_KUBE_APP_PROBERS (or bootstrap appProbers), answering as Istio's status port: httpGet, tcpSocket and grpc.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  Server as GrpcServer,
  type handleUnaryCall,
  ServerCredentials,
  type ServiceDefinition,
  status,
} from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'

/** grpc.health.v1 by hand (no codegen): HealthCheckRequest { service = 1 }, HealthCheckResponse { status = 1 }. */
const healthService: ServiceDefinition = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: (service: string) =>
      Buffer.concat([Buffer.from([0x0a, service.length]), Buffer.from(service)]),
    requestDeserialize: (bytes: Buffer) =>
      bytes.length === 0 ? '' : bytes.subarray(2, 2 + bytes[1]).toString(),
    responseSerialize: (servingStatus: number) => Buffer.from([0x08, servingStatus]),
    responseDeserialize: (bytes: Buffer) => bytes[1] ?? 0,
  },
}
const SERVING = 1
const NOT_SERVING = 2

let app: Server
let appPort: number
let grpc: GrpcServer
let grpcPort: number
let closedPort: number
let proxy: ProxyProcess
const seenHeaders: Record<string, string | string[] | undefined>[] = []

beforeAll(async () => {
  app = createServer((req, res) => {
    seenHeaders.push(req.headers)
    if (req.url === '/ok') return res.end('fine')
    if (req.url === '/fail') {
      res.writeHead(500)
      return res.end('broken')
    }
    if (req.url === '/slow') return setTimeout(() => res.end('late'), 3_000)
    if (req.url === '/elsewhere') {
      res.writeHead(302, { location: 'http://example.invalid/' })
      return res.end()
    }
    if (req.url === '/here') {
      res.writeHead(302, { location: '/fail' })
      return res.end()
    }
    if (req.url === '/needs-header') {
      res.writeHead(req.headers['x-probe'] === 'yes' ? 204 : 403)
      return res.end()
    }
    res.writeHead(404)
    res.end()
  })
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  appPort = (app.address() as AddressInfo).port
  closedPort = await freePort()

  grpc = new GrpcServer()
  const check: handleUnaryCall<string, number> = (call, callback) => {
    if (call.request === 'ready') return callback(null, SERVING)
    if (call.request === 'down') return callback(null, NOT_SERVING)
    callback({ code: status.NOT_FOUND, details: 'unknown service' })
  }
  grpc.addService(healthService, { Check: check })
  grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
      err === null ? resolve(port) : reject(err),
    ),
  )

  const http = (path: string, extra: Record<string, unknown> = {}) => ({
    httpGet: { path, port: appPort, scheme: 'HTTP', ...extra },
    timeoutSeconds: 1,
  })
  // As Istio's injector writes it (pkg/kube/inject/app_probe.go): JSON, keyed by the rewritten path.
  const probers = {
    '/app-health/web/readyz': http('/ok'),
    '/app-health/web/livez': http('/fail'),
    '/app-health/slow/readyz': http('/slow'),
    '/app-health/away/readyz': http('/elsewhere'),
    '/app-health/here/readyz': http('/here'),
    '/app-health/headers/readyz': http('/needs-header', { httpHeaders: [{ name: 'x-probe', value: 'yes' }] }),
    '/app-health/tcp/livez': { tcpSocket: { port: appPort }, timeoutSeconds: 1 },
    '/app-health/gone/livez': { tcpSocket: { port: closedPort }, timeoutSeconds: 1 },
    '/app-health/grpc/readyz': { grpc: { port: grpcPort, service: 'ready' }, timeoutSeconds: 1 },
    '/app-health/grpc/livez': { grpc: { port: grpcPort, service: 'down' }, timeoutSeconds: 1 },
    '/app-health/grpc/startupz': { grpc: { port: grpcPort, service: 'nobody' }, timeoutSeconds: 1 },
  }
  proxy = await startProxy({
    resources: {},
    env: { ISTIO_KUBE_APP_PROBERS: JSON.stringify(probers) },
    // The bootstrap's own map, for standalone use; the environment's entries are added to it.
    extraBootstrap: `appProbers:\n  /app-health/web/startupz: {httpGet: {path: /ok, port: ${appPort}}}\n`,
  })
})

afterAll(async () => {
  await proxy?.stop()
  await new Promise((resolve) => app?.close(resolve))
  grpc?.forceShutdown()
})

async function probe(path: string): Promise<{ status: number; body: string; ms: number }> {
  const started = Date.now()
  const res = await fetch(`http://127.0.0.1:${proxy.healthPort}${path}`)
  return { status: res.status, body: await res.text(), ms: Date.now() - started }
}

describe('app probes on the health port (Istio status port)', () => {
  it('httpGet: the app answer passes through, 200 and 500 with their bodies', async () => {
    expect(await probe('/app-health/web/readyz')).toMatchObject({ status: 200, body: 'fine' })
    expect(await probe('/app-health/web/livez')).toMatchObject({ status: 500, body: 'broken' })
    expect(await probe('/app-health/web/startupz')).toMatchObject({ status: 200, body: 'fine' })
  })

  it('httpGet: the Host the kubelet sent names the app port, not the status port', async () => {
    seenHeaders.length = 0
    await probe('/app-health/web/readyz')
    expect(seenHeaders.at(-1)?.host).toBe(`127.0.0.1:${appPort}`)
  })

  it("httpGet: the probe's httpHeaders are sent", async () => {
    expect((await probe('/app-health/headers/readyz')).status).toBe(204)
  })

  it('httpGet: no answer within timeoutSeconds is 500', async () => {
    const { status, ms } = await probe('/app-health/slow/readyz')
    expect(status).toBe(500)
    expect(ms).toBeGreaterThanOrEqual(900)
    expect(ms).toBeLessThan(2_500)
  })

  it('httpGet: a redirect to another host is 200; to the same host it is followed', async () => {
    expect((await probe('/app-health/away/readyz')).status).toBe(200)
    expect(await probe('/app-health/here/readyz')).toMatchObject({ status: 500, body: 'broken' })
  })

  it('tcpSocket: an open port is 200, a closed one 500', async () => {
    expect((await probe('/app-health/tcp/livez')).status).toBe(200)
    expect((await probe('/app-health/gone/livez')).status).toBe(500)
  })

  it('grpc: SERVING is 200, NOT_SERVING and a gRPC error are 500', async () => {
    expect((await probe('/app-health/grpc/readyz')).status).toBe(200)
    expect((await probe('/app-health/grpc/livez')).status).toBe(500)
    expect((await probe('/app-health/grpc/startupz')).status).toBe(500)
  })

  it('a path with no prober is 400, as Istio answers', async () => {
    expect(await probe('/app-health/other/readyz')).toMatchObject({
      status: 400,
      body: 'app prober config does not exists for /app-health/other/readyz',
    })
  })
})

describe('a bad ISTIO_KUBE_APP_PROBERS', () => {
  it('stops the proxy with the reason', async () => {
    await expect(
      startProxy({
        resources: {},
        env: { ISTIO_KUBE_APP_PROBERS: JSON.stringify({ '/healthz/other': { tcpSocket: { port: 80 } } }) },
      }),
    ).rejects.toThrow(/ISTIO_KUBE_APP_PROBERS:0: .*invalid path '\/healthz\/other'/)
  })
})
