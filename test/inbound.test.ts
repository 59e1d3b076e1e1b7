// Scenario: Sidecar ingress listeners forward inbound traffic to the local app at their defaultEndpoint.

import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send, sendRaw } from './harness/client.ts'
import { loopbackIngress, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** What the app saw: the echo upstream's fields plus the request body. */
interface AppSaw {
  name: string
  method: string
  url: string
  headers: Record<string, string>
  body: string
}

const connectionFailure =
  'upstream connect error or disconnect/reset before headers. reset reason: connection failure'

/** An app that echoes the request with its body; /teapot answers 418 with its own header. */
function app(name: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const saw: AppSaw = {
        name,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers as Record<string, string>,
        body: Buffer.concat(chunks).toString(),
      }
      const body = JSON.stringify(saw)
      const status = req.url === '/teapot' ? 418 : 200
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-app': name,
      })
      res.end(body)
    })
  }
}

/** A GET to `address:port` with any Host, over node:http (the harness client only dials 127.0.0.1). */
function getFrom(address: string, port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: address, port, path, agent: false, headers: { host: 'me' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

function saw(reply: { body: string }): AppSaw {
  return JSON.parse(reply.body) as AppSaw
}

let proxy: ProxyProcess
let app1: Upstream
let app2: Upstream
let late: Upstream | undefined
/** Ingress ports: `anyAddress` binds 0.0.0.0, `loopback` binds 127.0.0.1, `down` forwards to no app. */
let anyAddress: number
let loopback: number
let down: number
let downApp: number

beforeAll(async () => {
  app1 = await startUpstream('app1', app('app1'))
  app2 = await startUpstream('app2', app('app2'))
  ;[anyAddress, loopback, down, downApp] = await freePorts(4)
  proxy = await startProxy({
    labels: { app: 'reviews', version: 'v1' },
    resources: {
      'sidecar.yaml': sidecar({
        name: 'reviews',
        selector: { app: 'reviews' },
        ingress: [
          { port: anyAddress, protocol: 'HTTP', name: 'http', defaultEndpoint: `127.0.0.1:${app1.port}` },
          loopbackIngress(loopback, app2.port, 'HTTP', 'http-admin'),
          { port: down, protocol: 'HTTP', name: 'http-down', defaultEndpoint: `127.0.0.1:${downApp}` },
        ],
      }),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([app1?.close(), app2?.close(), late?.close()])
})

describe('forwarding to the local app', () => {
  it('forwards method, path, query and headers, and returns the app response', async () => {
    const reply = await send(anyAddress, 'reviews.default.svc.cluster.local:9080', '/items/7?sort=asc', {
      headers: { 'x-custom': 'kept', 'user-agent': 'inbound-test', accept: 'application/json' },
    })
    expect(reply.status).toBe(200)
    expect(reply.headers['x-app']).toBe('app1')
    expect(reply.headers['content-type']).toBe('application/json')
    const e = saw(reply)
    expect(e.name).toBe('app1')
    expect(e.method).toBe('GET')
    expect(e.url).toBe('/items/7?sort=asc')
    expect(e.headers.host).toBe('reviews.default.svc.cluster.local:9080')
    expect(e.headers['x-custom']).toBe('kept')
    expect(e.headers['user-agent']).toBe('inbound-test')
    expect(e.headers.accept).toBe('application/json')
  })

  it('accepts any Host: the inbound listener has one catch-all virtual host', async () => {
    for (const host of ['whatever.example', 'reviews', '10.0.0.5:9080']) {
      const reply = await send(anyAddress, host, '/')
      expect(reply.status).toBe(200)
      expect(saw(reply).headers.host).toBe(host)
    }
  })

  it('passes the app status and headers through', async () => {
    const reply = await send(anyAddress, 'reviews', '/teapot')
    expect(reply.status).toBe(418)
    expect(reply.headers['x-app']).toBe('app1')
    expect(saw(reply).url).toBe('/teapot')
  })

  it('adds x-forwarded-proto and generates x-request-id; adds no x-forwarded-for (a sidecar, as Istio)', async () => {
    const e = saw(await send(anyAddress, 'reviews', '/fwd'))
    expect(e.headers['x-forwarded-for']).toBeUndefined()
    expect(e.headers['x-forwarded-proto']).toBe('http')
    expect(e.headers['x-request-id']).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    )
    const again = saw(await send(anyAddress, 'reviews', '/fwd'))
    expect(again.headers['x-request-id']).not.toBe(e.headers['x-request-id'])
  })

  it('passes a client x-forwarded-for unchanged and keeps the client x-request-id', async () => {
    const e = saw(
      await send(anyAddress, 'reviews', '/fwd', {
        headers: { 'x-forwarded-for': '203.0.113.9', 'x-request-id': 'req-from-client' },
      }),
    )
    expect(e.headers['x-forwarded-for']).toBe('203.0.113.9')
    expect(e.headers['x-request-id']).toBe('req-from-client')
  })

  it('strips hop-by-hop headers on the way in', async () => {
    const raw = await sendRaw(
      anyAddress,
      'GET /hop HTTP/1.1\r\nHost: reviews\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\n' +
        'Keep-Alive: timeout=5\r\nX-Visible: 1\r\n\r\n',
    )
    expect(raw.startsWith('HTTP/1.1 200')).toBe(true)
    const e = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as AppSaw
    expect(e.headers['x-secret']).toBeUndefined()
    expect(e.headers['keep-alive']).toBeUndefined()
    expect(e.headers['x-visible']).toBe('1')
  })
})

describe('request bodies', () => {
  it('forwards a POST body with content-length', async () => {
    const body = JSON.stringify({ rating: 5, reviewer: 'jason' })
    const reply = await send(anyAddress, 'reviews', '/ratings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    expect(reply.status).toBe(200)
    const e = saw(reply)
    expect(e.method).toBe('POST')
    expect(e.body).toBe(body)
    expect(e.headers['content-length']).toBe(String(body.length))
    expect(e.headers['content-type']).toBe('application/json')
  })

  it('forwards a 1 MiB PUT body intact', async () => {
    const body = Buffer.alloc(1024 * 1024, 'abcdefghijklmnopqrstuvwxyz').toString()
    const e = saw(await send(anyAddress, 'reviews', '/blob', { method: 'PUT', body }))
    expect(e.method).toBe('PUT')
    expect(e.body.length).toBe(body.length)
    expect(e.body === body).toBe(true)
  })

  it('forwards a chunked POST body', async () => {
    const raw = await sendRaw(
      anyAddress,
      'POST /chunked HTTP/1.1\r\nHost: reviews\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    )
    expect(raw.startsWith('HTTP/1.1 200')).toBe(true)
    expect((JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as AppSaw).body).toBe('hello world')
  })
})

describe('ingress listeners', () => {
  it('two ingress ports reach two apps', async () => {
    expect(saw(await send(anyAddress, 'reviews', '/')).name).toBe('app1')
    expect(saw(await send(loopback, 'reviews', '/')).name).toBe('app2')
    expect(app2.seen.at(-1)?.url).toBe('/')
  })

  it('bind: 127.0.0.1 listens on loopback only; the default bind (0.0.0.0) takes any local address', async () => {
    // 127.0.0.2 is a local address too, but only a wildcard-bound socket accepts connections to it.
    expect(saw(await getFrom('127.0.0.1', loopback)).name).toBe('app2')
    await expect(getFrom('127.0.0.2', loopback)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    expect(saw(await getFrom('127.0.0.2', anyAddress)).name).toBe('app1')
  })

  it('503 UF with Envoy’s body when the local app is down, then recovers when it starts', async () => {
    const reply = await send(down, 'reviews', '/')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(connectionFailure)
    const post = await send(down, 'reviews', '/', { method: 'POST', body: 'lost' })
    expect(post.status).toBe(503)
    expect(post.body).toBe(connectionFailure)
    late = await startUpstream('late', app('late'), downApp)
    const back = await send(down, 'reviews', '/')
    expect(back.status).toBe(200)
    expect(saw(back).name).toBe('late')
  })
})
