// Scenario: a request runs on the model it started with (DESIGN.md §2 hot reload): a reload while it waits
// out a fault delay does not take its route or its cluster away.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, type Reply, send } from './harness/client.ts'
import { egressSidecar, loopbackService, routeTo, virtualService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let before: Upstream
let after: Upstream
let egress: number

/**
 * Model 1: `app` goes to service `legacy` after a fault delay. Model 2: `legacy` is gone, `app` goes to
 * `app`, and `probe` (unknown before) tells the test that the reload took effect.
 */
const model1 = (): string =>
  yamlStream(
    loopbackService('app', 80, after.port),
    loopbackService('legacy', 80, before.port),
    virtualService({
      hosts: ['app'],
      http: [
        {
          fault: { delay: { percentage: { value: 100 }, fixedDelay: '2500ms' } },
          route: routeTo('legacy'),
        },
      ],
    }),
  )
const model2 = (): string =>
  yamlStream(
    loopbackService('app', 80, after.port),
    loopbackService('probe', 80, after.port),
    virtualService({ hosts: ['app'], http: [{ route: routeTo('app') }] }),
  )

beforeAll(async () => {
  before = await startUpstream('before')
  after = await startUpstream('after')
  ;[egress] = await freePorts(1)
  proxy = await startProxy({ resources: { 'sidecar.yaml': egressSidecar(egress), 'mesh.yaml': model1() } })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([before?.close(), after?.close()])
})

describe('one model per request', () => {
  it('a reload during a fault delay keeps the route and the (since removed) cluster the request started with', async () => {
    let settled = false
    const pending = send(egress, 'app', '/delayed').then((reply: Reply) => {
      settled = true
      return reply
    })
    await new Promise((r) => setTimeout(r, 300))
    await proxy.writeResource('mesh.yaml', model2())
    await eventually(async () => (await send(egress, 'probe', '/')).status === 200)
    // The reload took effect while the first request was still held by its delay.
    expect(settled).toBe(false)
    const reply = await pending
    expect(reply.status).toBe(200)
    expect(echoed(reply)).toMatchObject({ name: 'before', url: '/delayed' })
    // A request that starts now runs on the new model.
    expect(echoed(await send(egress, 'app', '/')).name).toBe('after')
  })
})
