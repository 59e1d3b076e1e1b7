// Scenario: hot reload swaps the model atomically, keeps listeners bound, and rejects bad config with file:line.

import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { answerAfter, startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let v1: Upstream
let v2: Upstream
let slow: Upstream
let egress: number
let extra: number

const sidecarWith = (ports: number[]) =>
  istio.sidecar({ egress: ports.map((port) => ({ port, protocol: 'HTTP', name: `http-${port}` })) })

const reviewsTo = (subset: string) =>
  istio.virtualService({ hosts: ['reviews'], http: [{ route: istio.routeTo('reviews', subset) }] })

async function dump(): Promise<{
  model: { version: number }
  lastError: { messages: { file: string; line: number; message: string }[] } | null
}> {
  return (await (await proxy.admin('/config_dump')).json()) as never
}

beforeAll(async () => {
  v1 = await startUpstream('v1')
  v2 = await startUpstream('v2')
  slow = await startUpstream('slow', answerAfter(1_500, 'slow done'))
  ;[egress, extra] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecarWith([egress]),
      'services.yaml': istio.yamlStream(
        istio.serviceEntry({
          name: 'reviews',
          ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
          endpoints: istio.versionEndpoints('http', { v1: v1.port, v2: v2.port }),
        }),
        istio.loopbackService('slow', 80, slow.port),
        istio.destinationRule({ host: 'reviews', subsets: istio.versionSubsets('v1', 'v2') }),
      ),
      'vs.yaml': reviewsTo('v1'),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([v1?.close(), v2?.close(), slow?.close()])
})

describe('hot reload', () => {
  it('a changed VirtualService takes effect without a restart', async () => {
    expect(echoed(await send(egress, 'reviews', '/')).name).toBe('v1')
    const before = (await dump()).model.version
    await proxy.writeResource('vs.yaml', reviewsTo('v2'))
    await eventually(async () => echoed(await send(egress, 'reviews', '/')).name === 'v2')
    expect((await dump()).model.version).toBeGreaterThan(before)
  })

  it('in-flight requests finish on the old model while a reload happens', async () => {
    const pending = send(egress, 'slow', '/')
    await new Promise((r) => setTimeout(r, 200))
    await proxy.writeResource('vs.yaml', reviewsTo('v1'))
    await eventually(async () => echoed(await send(egress, 'reviews', '/')).name === 'v1')
    const reply = await pending
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('slow done')
  })

  it('an invalid file is rejected with file:line: reason and the last good model keeps serving', async () => {
    const version = (await dump()).model.version
    await proxy.writeResource(
      'vs.yaml',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - match:
        - uri: {regex: '(unclosed'}
      route: [{destination: {host: reviews, subset: v2}}]
`,
    )
    await eventually(async () => (await dump()).lastError !== null)
    const d = await dump()
    expect(d.model.version).toBe(version)
    const [first] = d.lastError?.messages ?? []
    expect(first.file.endsWith('vs.yaml')).toBe(true)
    expect(first.line).toBe(8)
    expect(first.message).toMatch(/regex/)
    expect(proxy.stderr()).toMatch(/vs\.yaml:8: .*regex/)
    expect(echoed(await send(egress, 'reviews', '/')).name).toBe('v1')

    // YAML that does not even parse is rejected the same way.
    await proxy.writeResource('vs.yaml', 'apiVersion: networking.istio.io/v1\nkind: [unclosed\n')
    await eventually(async () => ((await dump()).lastError?.messages[0]?.message ?? '').length > 0)
    expect(echoed(await send(egress, 'reviews', '/')).name).toBe('v1')

    // Fixing the file clears the error.
    await proxy.writeResource('vs.yaml', reviewsTo('v2'))
    await eventually(async () => echoed(await send(egress, 'reviews', '/')).name === 'v2')
    expect((await dump()).lastError).toBeNull()
  })

  it('adds and removes listeners while existing connections on kept ports stay open', async () => {
    const agent = new Agent({ connections: 1, keepAliveTimeout: 30_000 })
    const viaAgent = async (): Promise<string> => {
      const res = await request(`http://127.0.0.1:${egress}/`, {
        headers: { host: 'reviews' },
        dispatcher: agent,
      })
      return ((await res.body.json()) as { name: string }).name
    }
    await viaAgent()
    let connects = 0
    agent.on('connect', () => connects++)

    await proxy.writeResource('sidecar.yaml', sidecarWith([egress, extra]))
    await eventually(async () => {
      try {
        return (await send(extra, 'reviews', '/')).status === 200
      } catch {
        return false
      }
    })
    await viaAgent()
    expect(connects).toBe(0)

    await proxy.writeResource('sidecar.yaml', sidecarWith([egress]))
    await eventually(async () => {
      try {
        await send(extra, 'reviews', '/')
        return false
      } catch {
        return true
      }
    })
    await viaAgent()
    expect(connects).toBe(0)
    await agent.close()
  })
})
