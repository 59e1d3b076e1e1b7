// Scenario: Istio's request-timeouts task: reviews has a 0.5 s route timeout, ratings gets a 2 s injected delay.

import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { egressSidecar, loopbackService, routeTo, virtualService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let ratings: Upstream
let reviews: Upstream

beforeAll(async () => {
  ;[egress] = await freePorts(1)
  ratings = await startUpstream('ratings')
  // reviews calls ratings through the sidecar's egress listener, as an application in the mesh does.
  reviews = await startUpstream('reviews', (req, res) => {
    req.resume()
    request(`http://127.0.0.1:${egress}/ratings/0`, { headers: { host: 'ratings' } })
      .then(async (r) => {
        const body = await r.body.text()
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end(`reviews with ratings ${r.statusCode} ${body.length}`)
      })
      .catch(() => res.writeHead(500).end())
  })
  const service = (name: string, port: number) => loopbackService(name, 9080, port)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': yamlStream(service('reviews', reviews.port), service('ratings', ratings.port)),
      'virtual-services.yaml': yamlStream(
        virtualService({
          hosts: ['ratings'],
          http: [
            { fault: { delay: { percentage: { value: 100 }, fixedDelay: '2s' } }, route: routeTo('ratings') },
          ],
        }),
        virtualService({ hosts: ['reviews'], http: [{ route: routeTo('reviews'), timeout: '0.5s' }] }),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([ratings?.close(), reviews?.close()])
})

describe('request timeouts (Istio task)', () => {
  it('reviews answers 504 upstream request timeout after about 0.5 s while ratings is delayed 2 s', async () => {
    const started = Date.now()
    const reply = await send(egress, 'reviews', '/reviews/0')
    const took = Date.now() - started
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('upstream request timeout')
    expect(took).toBeGreaterThanOrEqual(450)
    expect(took).toBeLessThan(1_800)
  })

  it('ratings itself is only delayed, not failed', async () => {
    const started = Date.now()
    const reply = await send(egress, 'ratings', '/ratings/0')
    expect(reply.status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900)
  })
})
