// Scenario: the HTTP filters run in the order Istio builds them (pilot's buildHTTPConnectionManager:
// fault before CORS before the router; the local rate limit where an EnvoyFilter INSERT_BEFORE puts it, first).

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { loopbackService, routeTo, sidecar, virtualService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let app: Upstream
let proxy: ProxyProcess
let egress: number
/** An egress port whose listener-wide bucket holds one token that never refills. */
let limited: number

const preflight = {
  method: 'OPTIONS',
  headers: { origin: 'https://a.example', 'access-control-request-method': 'GET' },
}

/** The CORS policy both VirtualServices carry. */
const corsPolicy = { allowOrigins: [{ exact: 'https://a.example' }], allowMethods: ['GET'] }

beforeAll(async () => {
  app = await startUpstream('app')
  ;[egress, limited] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({
        egress: [
          { port: egress, protocol: 'HTTP', name: 'http' },
          { port: limited, protocol: 'HTTP', name: 'http-limited' },
        ],
      }),
      'services.yaml': yamlStream(
        loopbackService('faulty', 80, app.port),
        loopbackService('app', 80, app.port),
      ),
      'virtual-services.yaml': yamlStream(
        virtualService({
          hosts: ['faulty'],
          http: [
            {
              corsPolicy,
              fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } },
              route: routeTo('faulty'),
            },
          ],
        }),
        virtualService({ hosts: ['app'], http: [{ corsPolicy, route: routeTo('app') }] }),
      ),
    },
    extraBootstrap: `rateLimits:
  - port: ${limited}
    tokenBucket: {maxTokens: 1, fillInterval: 1h}
`,
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

describe('filter order (Istio sidecar HTTP connection manager)', () => {
  it('a CORS preflight on a route with a fault abort gets the fault: fault runs before CORS', async () => {
    const reply = await send(egress, 'faulty', '/', preflight)
    expect(reply.status).toBe(503)
    expect(reply.body).toBe('fault filter abort')
    expect(reply.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('the same preflight on a route without a fault is answered by CORS', async () => {
    const reply = await send(egress, 'app', '/', preflight)
    expect(reply.status).toBe(200)
    expect(reply.headers['access-control-allow-origin']).toBe('https://a.example')
  })

  it('the local rate limit runs before CORS and before the router answers 404 NR', async () => {
    expect((await send(limited, 'app', '/')).status).toBe(200)
    const preflightReply = await send(limited, 'app', '/', preflight)
    expect(preflightReply.status).toBe(429)
    expect(preflightReply.headers['x-envoy-ratelimited']).toBe('true')
    // No route for this host: in Envoy the router answers 404 only after the filters before it ran.
    expect((await send(limited, 'nowhere.example', '/')).status).toBe(429)
    expect((await send(egress, 'nowhere.example', '/')).status).toBe(404)
  })
})
