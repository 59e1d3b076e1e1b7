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
    if (req.url === '/repeated') {
      // Raw field lines: repeated names, mixed case, a hop-by-hop header listed twice in Connection.
      res.writeHead(200, [
        'Set-Cookie',
        'a=1',
        'X-Order',
        'first',
        'Connection',
        'X-Hop-One',
        'set-cookie',
        'b=2',
        'X-Hop-One',
        'gone',
        'connection',
        'x-hop-two',
        'X-Hop-Two',
        'gone too',
        'x-order',
        'second',
        'Content-Length',
        '2',
      ])
      res.end('ok')
      return
    }
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

  it('passes every value of a repeated field, in order, and drops what each Connection header names', async () => {
    const raw = await sendRaw(port, 'GET /repeated HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n')
    const lines = raw.slice(0, raw.indexOf('\r\n\r\n')).split('\r\n').slice(1)
    expect(lines.filter((l) => l.startsWith('set-cookie:'))).toEqual(['set-cookie: a=1', 'set-cookie: b=2'])
    expect(lines.filter((l) => l.startsWith('x-order:'))).toEqual(['x-order: first', 'x-order: second'])
    expect(lines.some((l) => l.startsWith('x-hop'))).toBe(false)
    expect(raw.endsWith('\r\n\r\nok')).toBe(true)
  })
})
