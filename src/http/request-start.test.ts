// Unit tests for the connection manager's step before the filters: an overloaded thread answers 503, the path is normalized (or the request rejected) before the first filter runs.

import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { notOverloaded, type OverloadState } from '../protocol/overload.ts'
import type { HttpFilter } from './filter.ts'
import type { PathNormalizationType } from './path-normalization.ts'
import { RequestContext } from './request-context.ts'
import { startRequest } from './request-start.ts'
import { sendResponse } from './respond.ts'
import { testHttpListener } from './test-listener.ts'

let server: Server | undefined

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

interface Seen {
  /** The target each first filter saw. */
  readonly urls: string[]
  /** responseCodeDetails of each request, when its response finished. */
  readonly details: string[]
  /** The response flags of each request, when its response finished. */
  readonly flags: string[]
  /** The limit stats the listener counted. */
  readonly counted: string[]
}

/** Serves requests through startRequest with one filter that records the target and answers 200. */
async function serve(
  type: PathNormalizationType,
  overload: OverloadState = notOverloaded,
): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { urls: [], details: [], flags: [], counted: [] }
  const recordAndAnswer: HttpFilter = {
    name: 'record',
    onRequestHeaders: (ctx) => {
      seen.urls.push(ctx.url)
      sendResponse(ctx, 200, ctx.path)
      return 'stop'
    },
  }
  const listener = testHttpListener({
    direction: 'inbound',
    filters: [recordAndAnswer],
    countLimit: (stat) => seen.counted.push(stat),
    normalization: type,
    overload,
  })
  server = createServer((req, res) => {
    const ctx = new RequestContext(req, res, req, listener, listener.proxyModel)
    res.once('finish', () => {
      seen.details.push(ctx.responseCodeDetails)
      seen.flags.push(...ctx.responseFlags)
    })
    startRequest(ctx)
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, seen }
}

/** GET with the target sent exactly as written (undici's and fetch's URL parsing would resolve it first). */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('request start (Envoy ConnectionManagerUtility::maybeNormalizePath, before the decoder filters)', () => {
  it('the first filter already sees the normalized target, query kept', async () => {
    const { port, seen } = await serve('BASE')
    expect(await get(port, '/a/../b/./c%7e?x=/../y')).toEqual({ status: 200, body: '/b/c~' })
    expect(seen.urls).toEqual(['/b/c~?x=/../y'])
  })

  it('a path Envoy rejects gets 400 path_normalization_failed and no filter runs', async () => {
    const { port, seen } = await serve('BASE')
    expect((await get(port, '/a%00b')).status).toBe(400)
    expect(seen.urls).toEqual([])
    expect(seen.details).toEqual(['path_normalization_failed'])
  })

  it('NONE leaves the target as sent', async () => {
    const { port, seen } = await serve('NONE')
    expect(await get(port, '/a/../b')).toEqual({ status: 200, body: '/a/../b' })
    expect(seen.urls).toEqual(['/a/../b'])
  })
})

describe('overload: stop_accepting_requests (Envoy ActiveStream::decodeHeaders, before any filter)', () => {
  it('saturated: a new request gets 503 `envoy overloaded`, flag OM, details overload, and no filter runs', async () => {
    const state = { stopAcceptingRequests: 1, rejectIncomingConnections: false, disableHttpKeepalive: false }
    const { port, seen } = await serve('BASE', state)
    expect(await get(port, '/a')).toEqual({ status: 503, body: 'envoy overloaded' })
    expect(seen.urls).toEqual([])
    expect(seen.details).toEqual(['overload'])
    expect(seen.flags).toEqual(['OM'])
    expect(seen.counted).toEqual(['downstream_rq_overload_close'])
    // Released: the next request is served.
    state.stopAcceptingRequests = 0
    expect(await get(port, '/a')).toEqual({ status: 200, body: '/a' })
  })

  it('scaled: about that share of new requests is shed', async () => {
    const state = {
      stopAcceptingRequests: 0.5,
      rejectIncomingConnections: false,
      disableHttpKeepalive: false,
    }
    const { port } = await serve('NONE', state)
    let shed = 0
    for (let i = 0; i < 200; i++) if ((await get(port, '/')).status === 503) shed++
    // Binomial(200, 0.5): outside [60, 140] with probability below 1e-8.
    expect(shed).toBeGreaterThan(60)
    expect(shed).toBeLessThan(140)
  })
})
