// Scenario: with `concurrency: 2`, admin /tap (worker 0) shows the requests both worker threads serve, each once, and `max` counts across them.

import { request as httpRequest, type IncomingMessage } from 'node:http'
import { Client } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TapEvent } from '../src/live/live-api.ts'
import { egressSidecar, loopbackService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let app: Upstream

beforeAll(async () => {
  app = await startUpstream('app')
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    extraBootstrap: 'concurrency: 2\n',
    resources: { 'tap.yaml': yamlStream(egressSidecar(egress), loopbackService('app', 80, app.port)) },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

/** A tap's NDJSON events as they come, and `ended` once the proxy ends the stream. */
async function openTap(query: string): Promise<{ events: TapEvent[]; ended: Promise<void>; close(): void }> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    httpRequest({ port: proxy.adminPort, host: '127.0.0.1', path: `/tap?${query}`, agent: false }, resolve)
      .on('error', reject)
      .end()
  })
  expect(res.statusCode).toBe(200)
  const events: TapEvent[] = []
  let rest = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) events.push(JSON.parse(line) as TapEvent)
  })
  const ended = new Promise<void>((resolve) => res.once('end', resolve))
  return { events, ended, close: () => res.destroy() }
}

it('gets every request once from both workers, and max counts across them', async () => {
  const all = await openTap('authority=app')
  const bounded = await openTap('authority=app&max=5')
  const sent: string[] = []
  // New connections (the kernel picks a worker per connection) until each worker served some.
  for (let i = 0; i < 200; i++) {
    const workers = new Set(all.events.map((e) => e.worker))
    if (sent.length >= 10 && workers.size === 2) break
    const client = new Client(`http://127.0.0.1:${egress}`)
    for (let r = 0; r < 2; r++) {
      const id = `tap-${process.pid}-${sent.length}`
      const res = await client.request({ path: `/${id}`, method: 'GET', headers: { host: 'app' } })
      await res.body.text()
      expect(res.statusCode).toBe(200)
      sent.push(`/${id}`)
    }
    await client.close()
    // Events from the other worker cross threads: let them arrive before counting.
    await new Promise((r) => setTimeout(r, 20))
  }
  await new Promise((r) => setTimeout(r, 200))
  expect(new Set(all.events.map((e) => e.worker))).toEqual(new Set([0, 1]))
  expect(all.events.map((e) => e.path).sort()).toEqual([...sent].sort())
  await bounded.ended
  expect(bounded.events).toHaveLength(5)
  expect(new Set(bounded.events.map((e) => e.path)).size).toBe(5)
  all.close()
})
