// Scenario: the headers Istio configures Envoy to add: x-envoy-attempt-count upstream, `server` downstream.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, send } from './harness/client.ts'
import {
  loopbackIngress,
  loopbackService,
  routeTo,
  sidecar,
  virtualService,
  yamlStream,
} from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { echo, startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let app: Upstream
let egress: number
let ingress: number

beforeAll(async () => {
  // The app names itself in `server`, as most frameworks do; the proxy overwrites it.
  const answer = echo('app')
  app = await startUpstream('app', (req, res) => {
    res.setHeader('server', 'app-framework/1.0')
    answer(req, res)
  })
  ;[egress, ingress] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({
        egress: [{ port: egress, protocol: 'HTTP', name: 'http' }],
        ingress: [loopbackIngress(ingress, app.port, 'HTTP', 'http')],
      }),
      'services.yaml': yamlStream(
        loopbackService('plain', 80, app.port),
        loopbackService('no-retries', 80, app.port),
        virtualService({
          hosts: ['no-retries'],
          http: [{ retries: { attempts: 0 }, route: routeTo('no-retries') }],
        }),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

describe('x-envoy-attempt-count (Istio: include_request_attempt_count on every outbound virtual host)', () => {
  it('is set on every outbound request, retries off or on, replacing a value the client sent', async () => {
    for (const host of ['plain', 'no-retries']) {
      const reply = await send(egress, host, '/', { headers: { 'x-envoy-attempt-count': '9' } })
      expect(reply.status).toBe(200)
      expect(echoed(reply).headers['x-envoy-attempt-count']).toBe('1')
    }
  })

  it('is neither added nor rewritten inbound, where Istio does not turn it on', async () => {
    const bare = await send(ingress, 'app')
    expect(echoed(bare).headers['x-envoy-attempt-count']).toBeUndefined()
    const fromClientSidecar = await send(ingress, 'app', '/', { headers: { 'x-envoy-attempt-count': '2' } })
    expect(echoed(fromClientSidecar).headers['x-envoy-attempt-count']).toBe('2')
  })
})

describe('server header (Istio: server_header_transformation OVERWRITE, proxy_headers.go)', () => {
  it('answers istio-envoy inbound and envoy outbound, over the upstream application own server header', async () => {
    const inbound = await send(ingress, 'app')
    expect(inbound.status).toBe(200)
    expect(inbound.headers.server).toBe('istio-envoy')
    const outbound = await send(egress, 'plain')
    expect(outbound.status).toBe(200)
    expect(outbound.headers.server).toBe('envoy')
  })

  it('is on the proxy own local replies too', async () => {
    const noRoute = await send(egress, 'nowhere')
    expect(noRoute.status).toBe(404)
    expect(noRoute.headers.server).toBe('envoy')
  })
})
