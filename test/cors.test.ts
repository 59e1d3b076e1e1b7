// Scenario: VirtualService `corsPolicy`: preflights answered by the proxy, CORS headers on allowed responses.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let app: Upstream

const service = (name: string): string => istio.loopbackService(name, 80, app.port)

/** A VirtualService for `host` with one route carrying `corsPolicy`. */
const withCors = (host: string, corsPolicy: istio.Fields): string =>
  istio.virtualService({ hosts: [host], http: [{ route: istio.routeTo(host), corsPolicy }] })

beforeAll(async () => {
  app = await startUpstream('app')
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.egressSidecar(egress),
      'services.yaml': ['ratings', 'strict', 'any'].map(service).join('---\n'),
      'virtual-services.yaml': istio.yamlStream(
        withCors('ratings', {
          allowOrigins: [{ exact: 'https://example.com' }, { regex: 'https://.*\\.example\\.org' }],
          allowMethods: ['POST', 'GET'],
          allowHeaders: ['X-Foo-Bar', 'content-type'],
          exposeHeaders: ['X-Expose'],
          maxAge: '24h',
          allowCredentials: true,
        }),
        withCors('strict', {
          allowOrigins: [{ exact: 'https://example.com' }],
          allowMethods: ['GET'],
          unmatchedPreflights: 'IGNORE',
        }),
        withCors('any', { allowOrigin: ['*'] }),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

const preflight = (origin: string) => ({
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-foo-bar' },
})

describe('CORS', () => {
  it('answers a preflight from an allowed origin itself', async () => {
    const before = app.seen.length
    const reply = await send(egress, 'ratings', '/ratings', preflight('https://example.com'))
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('')
    expect(reply.headers['access-control-allow-origin']).toBe('https://example.com')
    expect(reply.headers['access-control-allow-methods']).toBe('POST,GET')
    expect(reply.headers['access-control-allow-headers']).toBe('X-Foo-Bar,content-type')
    expect(reply.headers['access-control-max-age']).toBe('86400')
    expect(reply.headers['access-control-allow-credentials']).toBe('true')
    expect(reply.headers['access-control-expose-headers']).toBeUndefined()
    expect(app.seen.length).toBe(before)
  })

  it('matches origins by regex', async () => {
    const reply = await send(egress, 'ratings', '/ratings', preflight('https://a.example.org'))
    expect(reply.headers['access-control-allow-origin']).toBe('https://a.example.org')
  })

  it('adds CORS headers to actual responses for allowed origins only', async () => {
    const ok = await send(egress, 'ratings', '/ratings', { headers: { origin: 'https://example.com' } })
    expect(ok.status).toBe(200)
    expect(ok.headers['x-upstream']).toBe('app')
    expect(ok.headers['access-control-allow-origin']).toBe('https://example.com')
    expect(ok.headers['access-control-allow-credentials']).toBe('true')
    expect(ok.headers['access-control-expose-headers']).toBe('X-Expose')
    const other = await send(egress, 'ratings', '/ratings', { headers: { origin: 'https://evil.test' } })
    expect(other.status).toBe(200)
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
    const none = await send(egress, 'ratings', '/ratings')
    expect(none.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('forwards preflights from unmatched origins by default, and answers them bare with IGNORE', async () => {
    const before = app.seen.length
    const forwarded = await send(egress, 'ratings', '/fwd', preflight('https://evil.test'))
    expect(forwarded.status).toBe(200)
    expect(forwarded.headers['x-upstream']).toBe('app')
    expect(forwarded.headers['access-control-allow-origin']).toBeUndefined()
    expect(app.seen.length).toBe(before + 1)

    const ignored = await send(egress, 'strict', '/ign', preflight('https://evil.test'))
    expect(ignored.status).toBe(200)
    expect(ignored.headers['x-upstream']).toBeUndefined()
    expect(ignored.headers['access-control-allow-origin']).toBeUndefined()
    expect(app.seen.length).toBe(before + 1)
  })

  it('the deprecated allowOrigin "*" allows any origin', async () => {
    const reply = await send(egress, 'any', '/', preflight('https://whoever.test'))
    expect(reply.headers['access-control-allow-origin']).toBe('https://whoever.test')
    expect(reply.headers['access-control-allow-credentials']).toBeUndefined()
  })
})
