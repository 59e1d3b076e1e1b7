// Scenario: response headers from the upstream: hop-by-hop ones dropped, x-envoy-upstream-service-time overwritten.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sendRaw } from './harness/client.ts'
import { ingressSidecar } from './harness/istio.ts'
import { freePort } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let app: Upstream
let port: number

beforeAll(async () => {
  app = await startUpstream('app', (req, res) => {
    req.resume()
    res.writeHead(200, {
      'content-length': '2',
      connection: 'x-secret',
      'x-secret': 'hop',
      'x-kept': 'end-to-end',
      'x-envoy-upstream-service-time': '999',
    })
    res.end('ok')
  })
  port = await freePort()
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': ingressSidecar(port, app.port),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

describe('response headers', () => {
  it('drops headers named in Connection and replaces x-envoy-upstream-service-time with its own', async () => {
    const raw = await sendRaw(port, 'GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n')
    const head = raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase()
    expect(head).toMatch(/^http\/1.1 200/)
    expect(head).toContain('x-kept: end-to-end')
    expect(head).not.toContain('x-secret')
    const times = head.split('\r\n').filter((l) => l.startsWith('x-envoy-upstream-service-time:'))
    expect(times).toHaveLength(1)
    expect(times[0]).not.toContain('999')
  })
})
