// Scenario: Istio's meshConfig.pathNormalization (BASE by default) normalizes the path before route matching,
// so a prefix route cannot be bypassed with dot segments, and the normalized path is what goes upstream.

import { request as httpRequest } from 'node:http'
import type { ClientHttp2Session } from 'node:http2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Echoed, sendRaw } from './harness/client.ts'
import { closeSession, h2Request, h2Session } from './harness/h2.ts'
import { egressSidecar, loopbackService, routeTo, virtualService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let app: Upstream
let proxy: ProxyProcess
let unnormalized: ProxyProcess
let egress: number
let egressNone: number

/** `/public` goes to the app; `/admin` is answered by the proxy itself: the route a bypass would dodge. */
const resources = (port: number): Record<string, string> => ({
  'sidecar.yaml': egressSidecar(port),
  'services.yaml': loopbackService('app', 80, app.port),
  'virtual-service.yaml': virtualService({
    hosts: ['app'],
    http: [
      {
        name: 'admin',
        match: [{ uri: { prefix: '/admin' } }],
        directResponse: { status: 403, body: { string: 'admin route' } },
      },
      { name: 'public', match: [{ uri: { prefix: '/public' } }], route: routeTo('app') },
    ],
  }),
})

beforeAll(async () => {
  app = await startUpstream('app')
  ;[egress, egressNone] = await freePorts(2)
  ;[proxy, unnormalized] = await Promise.all([
    startProxy({ resources: resources(egress) }),
    startProxy({
      resources: resources(egressNone),
      extraBootstrap: 'pathNormalization:\n  normalization: NONE\n',
    }),
  ])
})

afterAll(async () => {
  await Promise.all([proxy?.stop(), unnormalized?.stop()])
  await app?.close()
})

/** GET with the path sent exactly as written (undici and fetch would resolve the dot segments first). */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, agent: false, headers: { host: 'app' } },
      (res) => {
        let body = ''
        res.setEncoding('latin1')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('pathNormalization BASE (Istio default: Envoy normalize_path)', () => {
  it.each([
    '/public/../admin/users',
    '/public/%2e%2e/admin/users',
    '/public/%2E./admin/users',
    '/public/..\\admin/users',
    '/public/./../admin/users',
  ])('a prefix route cannot be bypassed: %s is answered by the /admin route', async (path) => {
    const seen = app.seen.length
    const reply = await get(egress, path)
    expect(reply).toEqual({ status: 403, body: 'admin route' })
    expect(app.seen.length).toBe(seen)
  })

  it('sends the normalized path upstream and leaves the query alone', async () => {
    const reply = await get(egress, '/public/a/./b/../%63%7e\\d?x=/../y')
    expect(reply.status).toBe(200)
    expect((JSON.parse(reply.body) as Echoed).url).toBe('/public/a/c~/d?x=/../y')
  })

  it('answers 400 for a path Envoy rejects (%00, a fragment), before any route', async () => {
    for (const path of ['/public/%00', '/public/x#frag']) {
      const raw = await sendRaw(egress, `GET ${path} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`)
      expect(raw, path).toMatch(/^HTTP\/1\.1 400 /)
    }
  })

  describe('HTTP/2 :path goes through the same normalization', () => {
    let session: ClientHttp2Session
    beforeAll(async () => {
      session = await h2Session(egress)
    })
    afterAll(() => closeSession(session))

    it('routes /public/../admin by the normalized path', async () => {
      const reply = await h2Request(session, { ':path': '/public/../admin/users', ':authority': 'app' })
      expect(reply.status).toBe(403)
      expect(reply.body.toString()).toBe('admin route')
    })

    it('forwards the normalized :path', async () => {
      const reply = await h2Request(session, { ':path': '/public/x/%2e%2e/y', ':authority': 'app' })
      expect(reply.status).toBe(200)
      expect((JSON.parse(reply.body.toString()) as Echoed).url).toBe('/public/y')
    })

    it('answers 400 for %00', async () => {
      const reply = await h2Request(session, { ':path': '/public/%00', ':authority': 'app' })
      expect(reply.status).toBe(400)
    })
  })
})

describe('pathNormalization NONE (Envoy normalize_path false)', () => {
  it('routes and forwards the path as sent', async () => {
    const reply = await get(egressNone, '/public/../admin/users')
    expect(reply.status).toBe(200)
    expect((JSON.parse(reply.body) as Echoed).url).toBe('/public/../admin/users')
  })
})
