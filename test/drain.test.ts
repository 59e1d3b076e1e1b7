// Scenario: SIGTERM drains as Envoy's graceful drain: the listener accepts on through the drain time, every response closes its connection, in-flight requests finish, then exit 0.

import { afterEach, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { ingressSidecar } from './harness/istio.ts'
import { freePort } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { answerAfter, startUpstream, type Upstream } from './harness/upstream.ts'

let upstream: Upstream | undefined
let proxy: ProxyProcess | undefined

afterEach(async () => {
  await proxy?.stop()
  await upstream?.close()
})

async function slowProxy(delayMs: number, drain: string): Promise<number> {
  upstream = await startUpstream('slow', answerAfter(delayMs, 'finished'))
  const port = await freePort()
  proxy = await startProxy({
    drain,
    resources: {
      'sidecar.yaml': ingressSidecar(port, upstream.port),
    },
  })
  return port
}

describe('drain on SIGTERM', () => {
  it('finishes every in-flight request, serves new connections through the drain period (each closed after its response), then refuses, exits 0', async () => {
    const port = await slowProxy(1_000, '2500ms')
    const inFlight = Array.from({ length: 8 }, () => send(port, 'app', '/work'))
    await new Promise((r) => setTimeout(r, 300))
    const started = Date.now()
    proxy?.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 100))
    // Envoy's graceful drain, as Istio's agent asks for it: the listener accepts until the drain time ends.
    const late = await send(port, 'app', '/late')
    expect(late.status).toBe(200)
    expect(late.body).toBe('finished')
    expect(late.headers.connection).toBe('close')
    const replies = await Promise.all(inFlight)
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      expect(reply.body).toBe('finished')
      expect(reply.headers.connection).toBe('close')
    }
    expect(await proxy?.exited).toBe(0)
    // The drain period is served out even with no connection left (Istio's agent sleeps it out).
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_400)
    await expect(send(port, 'app', '/after')).rejects.toThrow()
  })

  it('gives up on requests still running when the drain time is over, and still exits 0', async () => {
    const port = await slowProxy(5_000, '500ms')
    const pending = send(port, 'app', '/forever').then(
      () => 'answered',
      () => 'reset',
    )
    await new Promise((r) => setTimeout(r, 200))
    const started = Date.now()
    proxy?.child.kill('SIGTERM')
    expect(await proxy?.exited).toBe(0)
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(await pending).toBe('reset')
  })

  it("POST /quitquitquit exits 0 at once, without a drain (as Envoy's)", async () => {
    const port = await slowProxy(5_000, '5s')
    const pending = send(port, 'app', '/forever').then(
      () => 'answered',
      () => 'reset',
    )
    await new Promise((r) => setTimeout(r, 200))
    const started = Date.now()
    const res = await proxy?.admin('/quitquitquit', { method: 'POST' })
    expect(res?.status).toBe(200)
    expect(await proxy?.exited).toBe(0)
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(await pending).toBe('reset')
  })
})
