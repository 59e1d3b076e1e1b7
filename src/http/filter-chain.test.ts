// Unit tests for the filter chain runner: order, stop and resume, and a throwing filter costing one request.

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import type { ListenerModel, Model } from '../config/model.ts'
import { defaultLimits } from '../protocol/limits.ts'
import { notOverloaded } from '../protocol/overload.ts'
import { RouteTable } from '../route/route-table.ts'
import { meshTelemetryPolicy } from '../telemetry/telemetry-policy.ts'
import { TrafficObservers } from '../telemetry/traffic-observer.ts'
import type { FilterStatus, HttpFilter } from './filter.ts'
import { resumeFilters } from './filter-chain.ts'
import type { HttpListener } from './http-listener.ts'
import { PathNormalizer } from './path-normalization.ts'
import { RequestContext } from './request-context.ts'
import { sendResponse } from './respond.ts'

const listenerModel = {
  name: 'test',
  direction: 'inbound',
  address: '127.0.0.1',
  port: 0,
  protocol: 'HTTP',
  routeTable: new RouteTable('test', []),
} as unknown as ListenerModel
const proxyModel = { telemetry: meshTelemetryPolicy(undefined) } as Model

/** The listener as the http layer sees it (the runtime's ListenerRuntime implements the same interface). */
function httpListener(filters: readonly HttpFilter[]): HttpListener {
  return {
    model: listenerModel,
    proxyModel,
    filters,
    scheme: 'http',
    draining: false,
    closesConnections: false,
    overload: notOverloaded,
    observers: new TrafficObservers(),
    pathNormalizer: new PathNormalizer('BASE'),
    limits: defaultLimits,
    countLimit: () => {},
  }
}

let server: Server | undefined

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

/** Serves every request through `filters` and returns the status and body of one GET. */
async function through(filters: HttpFilter[]): Promise<{ status: number; body: string }> {
  const listener = httpListener(filters)
  server = createServer((req, res) => resumeFilters(new RequestContext(req, res, req, listener, proxyModel)))
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const res = await request(`http://127.0.0.1:${port}/`, { reset: true })
  return { status: res.statusCode, body: await res.body.text() }
}

const record = (seen: string[], name: string, status: FilterStatus = 'continue'): HttpFilter => ({
  name,
  onRequestHeaders: () => {
    seen.push(name)
    return status
  },
})

const answer = (status: number): HttpFilter => ({
  name: 'answer',
  onRequestHeaders: (ctx) => {
    sendResponse(ctx, status, 'answered')
    return 'stop'
  },
})

describe('filter chain', () => {
  it('runs filters in order until one stops the chain', async () => {
    const seen: string[] = []
    const reply = await through([record(seen, 'a'), record(seen, 'b'), answer(201), record(seen, 'never')])
    expect(seen).toEqual(['a', 'b'])
    expect(reply).toEqual({ status: 201, body: 'answered' })
  })

  it('a stopped chain resumes from the next filter', async () => {
    const seen: string[] = []
    const later: HttpFilter = {
      name: 'later',
      onRequestHeaders: (ctx) => {
        setTimeout(() => resumeFilters(ctx), 10)
        return 'stop'
      },
    }
    expect(await through([later, record(seen, 'after'), answer(202)])).toEqual({
      status: 202,
      body: 'answered',
    })
    expect(seen).toEqual(['after'])
  })

  it('a filter that throws costs its request a 500, and the next request is served', async () => {
    let calls = 0
    const flaky: HttpFilter = {
      name: 'flaky',
      onRequestHeaders: () => {
        if (calls++ === 0) throw new Error('bug')
        return 'continue'
      },
    }
    const listener = httpListener([flaky, answer(200)])
    server = createServer((req, res) =>
      resumeFilters(new RequestContext(req, res, req, listener, proxyModel)),
    )
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    const warnings: Error[] = []
    const onWarning = (w: Error): void => {
      warnings.push(w)
    }
    process.on('warning', onWarning)
    const first = await request(url, { reset: true })
    expect(first.statusCode).toBe(500)
    expect(await first.body.text()).toBe('internal error')
    const second = await request(url, { reset: true })
    expect(second.statusCode).toBe(200)
    await second.body.text()
    process.off('warning', onWarning)
    expect(warnings.map((w) => w.message)).toContain('bug')
  })
})
