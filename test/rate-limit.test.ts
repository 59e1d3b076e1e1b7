// Scenario: local rate limiting from the bootstrap's `rateLimits`: per listener port and per route name.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { loopbackService, routeTo, sidecar, virtualService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let listenerLimited: number
let routeLimited: number
let app: Upstream

beforeAll(async () => {
  app = await startUpstream('app')
  ;[listenerLimited, routeLimited] = await freePorts(2)
  proxy = await startProxy({
    extraBootstrap: `rateLimits:
  - port: ${listenerLimited}
    tokenBucket: {maxTokens: 3, tokensPerFill: 3, fillInterval: 1h}
  - port: ${routeLimited}
    route: limited
    tokenBucket: {maxTokens: 2, tokensPerFill: 2, fillInterval: 500ms}
`,
    resources: {
      'sidecar.yaml': sidecar({
        egress: [
          { port: listenerLimited, protocol: 'HTTP', name: 'http-a' },
          { port: routeLimited, protocol: 'HTTP', name: 'http-b' },
        ],
      }),
      'services.yaml': loopbackService('app', 80, app.port),
      'virtual-services.yaml': virtualService({
        hosts: ['app'],
        http: [
          { name: 'limited', match: [{ uri: { prefix: '/limited' } }], route: routeTo('app') },
          { name: 'free', route: routeTo('app') },
        ],
      }),
    },
  })
  const res = await proxy.admin('/logging?level=debug', { method: 'POST' })
  await res.arrayBuffer()
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

describe('local rate limiting', () => {
  it('answers 429 local_rate_limited (RL) once the listener bucket is empty', async () => {
    for (let i = 0; i < 3; i++) expect((await send(listenerLimited, 'app', `/a/${i}`)).status).toBe(200)
    const reply = await send(listenerLimited, 'app', '/a/over')
    expect(reply.status).toBe(429)
    expect(reply.body).toBe('local_rate_limited')
    expect(reply.headers['x-envoy-ratelimited']).toBe('true')
    await eventually(async () =>
      proxy.stderr().includes('app/a/over 429 flags=RL details=local_rate_limited'),
    )
  })

  it('limits only the named route, and refills after the fill interval', async () => {
    expect((await send(routeLimited, 'app', '/limited/1')).status).toBe(200)
    expect((await send(routeLimited, 'app', '/limited/2')).status).toBe(200)
    expect((await send(routeLimited, 'app', '/limited/3')).status).toBe(429)
    for (let i = 0; i < 5; i++) expect((await send(routeLimited, 'app', `/free/${i}`)).status).toBe(200)
    // 500ms later two tokens are back; poll rather than trust one sleep on a loaded machine.
    await new Promise((r) => setTimeout(r, 500))
    await eventually(async () => (await send(routeLimited, 'app', '/limited/again')).status === 200, 5_000)
  })
})
