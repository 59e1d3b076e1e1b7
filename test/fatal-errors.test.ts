// Scenario: an uncaught exception or unhandled rejection is logged, the process drains and exits non-zero; a supervisor restarts such a worker thread.

import { join } from 'node:path'
import { Client } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { ingressSidecar } from './harness/istio.ts'
import { freePort } from './harness/ports.ts'
import { eventually, type ProxyProcess, repoRoot, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** Makes SIGUSR2 raise a fatal error inside the proxy process (a test-only preload, not a proxy feature). */
const crashOnSignal = `--import=${join(repoRoot, 'test', 'harness', 'crash-on-signal.ts')}`

/** The supervisor does not restart a worker that dies within 2 s of its start (src/cli/supervisor.ts). */
const crashLoopMs = 2_000

let upstream: Upstream | undefined
let proxy: ProxyProcess | undefined

afterEach(async () => {
  await proxy?.stop()
  await upstream?.close()
  proxy = undefined
  upstream = undefined
})

/** A proxy in front of an app that answers after `delayMs`, preloaded to crash on SIGUSR2. */
async function crashableProxy(
  delayMs: number,
  env: Record<string, string> = {},
  extra = '',
  drain = '5s',
): Promise<number> {
  upstream = await startUpstream('slow', (req, res) => {
    req.resume()
    setTimeout(() => res.end('finished'), delayMs)
  })
  const port = await freePort()
  proxy = await startProxy({
    drain,
    env: { NODE_OPTIONS: crashOnSignal, ...env },
    extraBootstrap: extra,
    resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
  })
  return port
}

describe('fatal errors', () => {
  it('an uncaught exception is logged, in-flight requests finish, and the process exits 1', async () => {
    const port = await crashableProxy(1_000)
    const inFlight = Array.from({ length: 4 }, () => send(port, 'app', '/work'))
    await new Promise((r) => setTimeout(r, 300))
    proxy?.child.kill('SIGUSR2')
    const replies = await Promise.all(inFlight)
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      expect(reply.body).toBe('finished')
    }
    expect(await proxy?.exited).toBe(1)
    const log = proxy?.stderr() ?? ''
    expect(log).toMatch(/ error uncaught exception: Error: test: thrown from a SIGUSR2 handler\n/)
    expect(log).toContain('draining after the uncaught exception')
    expect(log).toContain('drained, exiting')
  })

  it('an unhandled rejection is logged, drains and exits 1 the same way', async () => {
    const port = await crashableProxy(10, { OUTRIGGER_TEST_CRASH: 'rejection' })
    expect((await send(port, 'app', '/before')).status).toBe(200)
    proxy?.child.kill('SIGUSR2')
    expect(await proxy?.exited).toBe(1)
    const log = proxy?.stderr() ?? ''
    expect(log).toMatch(/ error unhandled rejection: Error: test: rejected from a SIGUSR2 handler\n/)
    expect(log).toContain('drained, exiting')
  })

  it('the supervisor restarts a worker thread that exited after a fatal error, and keeps serving', async () => {
    const port = await crashableProxy(10, { OUTRIGGER_TEST_CRASH_WORKER: '1' }, 'concurrency: 2\n', '1s')
    const readyAt = Date.now()
    // Sooner, the exit would count as a crash loop (a bad config), which stops the proxy instead.
    await new Promise((r) => setTimeout(r, Math.max(0, crashLoopMs + 200 - (Date.now() - readyAt))))
    proxy?.child.kill('SIGUSR2')
    await eventually(async () => (proxy?.stderr() ?? '').includes('worker 1 exited with 1'), 15_000)
    const log = proxy?.stderr() ?? ''
    expect(log).toContain('uncaught exception: Error: test: thrown from a SIGUSR2 handler')
    // The restarted worker 1 takes connections again (the admin's per-worker accepted counts).
    const accepted = async (): Promise<number> => {
      const listeners = (await (await (proxy as ProxyProcess).admin('/listeners?format=json')).json()) as {
        worker_downstream_cx_total: number[]
      }[]
      return listeners[0].worker_downstream_cx_total[1]
    }
    await eventually(async () => (await (proxy as ProxyProcess).admin('/ready')).status === 200, 15_000)
    const before = await accepted()
    for (let i = 0; i < 20; i++) {
      const client = new Client(`http://127.0.0.1:${port}`)
      const res = await client.request({ path: `/after-${i}`, method: 'GET', headers: { host: 'app' } })
      await res.body.text()
      expect(res.statusCode).toBe(200)
      await client.close()
    }
    expect(await accepted()).toBeGreaterThan(before)
    proxy?.child.kill('SIGTERM')
    expect(await proxy?.exited).toBe(0)
  })

  it('a fatal error in the supervisor drains every worker thread and exits 1', async () => {
    const port = await crashableProxy(1_000, {}, 'concurrency: 2\n', '5s')
    const inFlight = Array.from({ length: 4 }, () => send(port, 'app', '/work'))
    await new Promise((r) => setTimeout(r, 300))
    proxy?.child.kill('SIGUSR2')
    for (const reply of await Promise.all(inFlight)) expect(reply.status).toBe(200)
    expect(await proxy?.exited).toBe(1)
    const log = proxy?.stderr() ?? ''
    expect(log).toMatch(/ error uncaught exception: Error: test: thrown from a SIGUSR2 handler\n/)
    expect(log).toContain('the supervisor asked to drain')
  })
})
