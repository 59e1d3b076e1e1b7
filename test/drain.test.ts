// Scenario: SIGTERM stops accepting, lets in-flight requests finish within the drain time, and exits 0.

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
  it('finishes every in-flight request, refuses new connections, exits 0', async () => {
    const port = await slowProxy(1_000, '5s')
    const inFlight = Array.from({ length: 8 }, () => send(port, 'app', '/work'))
    await new Promise((r) => setTimeout(r, 300))
    proxy?.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 100))
    await expect(send(port, 'app', '/late')).rejects.toThrow()
    const replies = await Promise.all(inFlight)
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      expect(reply.body).toBe('finished')
      expect(reply.headers.connection).toBe('close')
    }
    expect(await proxy?.exited).toBe(0)
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
