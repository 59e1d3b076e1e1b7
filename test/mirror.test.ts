// Scenario: VirtualService `mirror` / `mirrors[]`: fire-and-forget copies to shadow clusters that never touch the primary.

import { request as httpRequest } from 'node:http'
import { Readable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { egressSidecar, type Fields, loopbackService, routeTo, virtualService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { echo, startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let closedPort: number
let primary: Upstream
let shadow: Upstream
let slowShadow: Upstream
/** Request bodies the shadow received, by URL. */
const shadowBodies = new Map<string, string>()

const service = (name: string, port: number): string => loopbackService(name, 80, port)

/** A VirtualService `name` with one route to `primary` and the given mirroring fields. */
const route = (name: string, mirroring: Fields): string =>
  virtualService({ hosts: [name], http: [{ route: routeTo('primary'), ...mirroring }] })

beforeAll(async () => {
  const echoPrimary = echo('primary')
  primary = await startUpstream('primary', (req, res) => {
    if (!req.url?.startsWith('/early')) return echoPrimary(req, res)
    // Answers before reading the request body (which then keeps arriving).
    res.writeHead(200, { 'content-length': '5' })
    res.end('early')
    req.resume()
  })
  shadow = await startUpstream('shadow', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      shadowBodies.set(req.url ?? '', Buffer.concat(chunks).toString())
      res.writeHead(500)
      res.end('shadow failed')
    })
  })
  slowShadow = await startUpstream('slow-shadow', (req) => {
    req.resume()
    // Never answers: the primary must not wait for it.
  })
  ;[egress, closedPort] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': [
        service('primary', primary.port),
        service('shadow', shadow.port),
        service('slow-shadow', slowShadow.port),
        service('gone', closedPort),
        service('all', primary.port),
        service('half', primary.port),
        service('many', primary.port),
        service('broken', primary.port),
        service('slow', primary.port),
      ].join('---\n'),
      'virtual-services.yaml': [
        route('all', { mirror: { host: 'shadow' } }),
        route('half', { mirror: { host: 'shadow' }, mirrorPercentage: { value: 50 } }),
        route('many', {
          mirrors: [
            { destination: { host: 'shadow' } },
            { destination: { host: 'slow-shadow' }, percentage: { value: 0 } },
          ],
        }),
        route('broken', { mirror: { host: 'gone' } }),
        route('slow', { mirror: { host: 'slow-shadow' } }),
      ].join('---\n'),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await primary?.close()
  await shadow?.close()
  await slowShadow?.close()
})

const shadowSeen = (path: string) => shadow.seen.filter((s) => s.url === path)

describe('mirroring', () => {
  it('copies a request to the shadow cluster with a -shadow authority; the primary answer is unaffected', async () => {
    const reply = await send(egress, 'all', '/copy?x=1', { headers: { 'x-trace': 'abc' } })
    expect(reply.status).toBe(200)
    expect(reply.headers['x-upstream']).toBe('primary')
    await eventually(async () => shadowSeen('/copy?x=1').length === 1)
    const copy = shadowSeen('/copy?x=1')[0]
    expect(copy.headers.host).toBe('all-shadow')
    expect(copy.headers['x-trace']).toBe('abc')
    expect(primary.seen.find((s) => s.url === '/copy?x=1')?.headers.host).toBe('all')
  })

  it('mirrors a percentage of requests within statistical bounds', async () => {
    const n = 200
    for (let i = 0; i < n; i++) expect((await send(egress, 'half', `/half/${i}`)).status).toBe(200)
    // Let the last copies land; then Binomial(200, 0.5) (sd ≈ 7) must be within 7 sd of 100.
    await new Promise((r) => setTimeout(r, 300))
    const copies = shadow.seen.filter((s) => s.url.startsWith('/half/')).length
    expect(copies).toBeGreaterThan(50)
    expect(copies).toBeLessThan(150)
  })

  it('mirrors[] sends to each mirror by its own percentage', async () => {
    expect((await send(egress, 'many', '/many')).status).toBe(200)
    await eventually(async () => shadowSeen('/many').length === 1)
    expect(slowShadow.seen.filter((s) => s.url === '/many')).toHaveLength(0)
  })

  it('a shadow that is down or never answers neither fails nor slows the primary', async () => {
    expect((await send(egress, 'broken', '/broken')).status).toBe(200)
    const start = performance.now()
    for (let i = 0; i < 5; i++) expect((await send(egress, 'slow', `/slow/${i}`)).status).toBe(200)
    expect(performance.now() - start).toBeLessThan(3_000)
    await eventually(async () => slowShadow.seen.filter((s) => s.url.startsWith('/slow/')).length === 5)
  })

  it('mirrors a small request body, but not one over the 64 KiB buffer bound', async () => {
    const reply = await send(egress, 'all', '/with-body', { method: 'POST', body: 'payload' })
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body).name).toBe('primary')
    await eventually(async () => shadowBodies.get('/with-body') === 'payload')
    expect(shadowSeen('/with-body')[0].headers['content-length']).toBe('7')

    const big = await send(egress, 'all', '/big-body', { method: 'POST', body: 'x'.repeat(100 * 1024) })
    expect(big.status).toBe(200)
    await new Promise((r) => setTimeout(r, 200))
    expect(shadowSeen('/big-body')).toHaveLength(0)
  })

  it('mirrors a chunked request body once it has streamed to the primary, but not one over the bound', async () => {
    const chunked = async (path: string, parts: number, size: number): Promise<number> => {
      async function* body(): AsyncGenerator<Buffer> {
        for (let i = 0; i < parts; i++) {
          await tick()
          yield Buffer.alloc(size, 97 + (i % 26))
        }
      }
      const res = await request(`http://127.0.0.1:${egress}${path}`, {
        method: 'POST',
        headers: { host: 'all' },
        body: Readable.from(body(), { objectMode: false }),
      })
      await res.body.text()
      return res.statusCode
    }
    const expected = Array.from({ length: 6 }, (_, i) => String.fromCharCode(97 + i).repeat(5000)).join('')
    expect(await chunked('/chunked-body', 6, 5000)).toBe(200)
    const primarySaw = primary.seen.find((s) => s.url === '/chunked-body')
    expect(primarySaw?.headers['transfer-encoding']).toBe('chunked')
    await eventually(async () => shadowBodies.has('/chunked-body'))
    expect(shadowBodies.get('/chunked-body')).toBe(expected)

    expect(await chunked('/chunked-big', 20, 5000)).toBe(200)
    await new Promise((r) => setTimeout(r, 200))
    expect(shadowSeen('/chunked-big')).toHaveLength(0)

    // The primary answers before the body has ended (node:http's client keeps sending it): the
    // mirror still gets all of it.
    const early = httpRequest({
      port: egress,
      path: '/early-chunked',
      method: 'POST',
      headers: { host: 'all' },
    })
    const answered = new Promise<number>((resolve) =>
      early.on('response', (res) => resolve(res.resume().statusCode ?? 0)),
    )
    for (let i = 0; i < 6; i++) {
      early.write(Buffer.alloc(5000, 97 + i))
      await new Promise((r) => setTimeout(r, 50))
    }
    early.end()
    expect(await answered).toBe(200)
    await eventually(async () => shadowBodies.has('/early-chunked'))
    expect(shadowBodies.get('/early-chunked')).toBe(expected)
  })
})
