// Scenario: `concurrency: 2` runs two worker processes on the same ports (SO_REUSEPORT), supervised.

import { readdirSync, readFileSync } from 'node:fs'
import { Pool } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ingressSidecar } from './harness/istio.ts'
import { freePort } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let app: Upstream
let port: number
/** When the proxy answered ready: its workers were forked before. */
let readyAt: number

/** The supervisor does not restart a worker that dies within 2 s of its start (src/cli/supervisor.ts). */
const crashLoopMs = 2_000

/** Pids whose parent is `parent`. */
function childrenOf(parent: number): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === parent) pids.push(Number(entry))
    } catch {
      // the process ended while we looked
    }
  }
  return pids.sort()
}

/** utime + stime in clock ticks. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return Number(fields[11]) + Number(fields[12])
}

async function load(requests: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64 })
  let ok = 0
  await Promise.all(
    Array.from({ length: requests }, async () => {
      const res = await pool.request({ path: '/', method: 'GET', reset: true })
      await res.body.text()
      if (res.statusCode === 200) ok++
    }),
  )
  await pool.close()
  return ok
}

beforeAll(async () => {
  app = await startUpstream('app')
  port = await freePort()
  proxy = await startProxy({
    extraBootstrap: 'concurrency: 2\n',
    resources: {
      'sidecar.yaml': ingressSidecar(port, app.port),
    },
  })
  readyAt = Date.now()
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

describe('worker processes', () => {
  it('runs two workers that both take connections on the shared port', async () => {
    const pid = proxy.child.pid as number
    const workers = childrenOf(pid)
    expect(workers).toHaveLength(2)
    const before = workers.map(cpuTicks)
    // A new connection per request, so the kernel's SO_REUSEPORT hash spreads them over both workers.
    expect(await load(1_500)).toBe(1_500)
    const spent = workers.map((w, i) => cpuTicks(w) - before[i])
    for (const ticks of spent) expect(ticks).toBeGreaterThan(2)
  })

  it('restarts a worker that dies, and keeps serving', async () => {
    const pid = proxy.child.pid as number
    const [victim] = childrenOf(pid).slice(-1)
    // Killed sooner, it would count as a crash loop (a bad config), which stops the proxy instead.
    const age = Date.now() - readyAt
    if (age <= crashLoopMs) await new Promise((r) => setTimeout(r, crashLoopMs - age + 200))
    process.kill(victim, 'SIGKILL')
    await eventually(async () => {
      const now = childrenOf(pid)
      return now.length === 2 && !now.includes(victim)
    })
    expect(await load(200)).toBe(200)
  })

  it('drains every worker on SIGTERM and exits 0', async () => {
    const pid = proxy.child.pid as number
    const workers = childrenOf(pid)
    proxy.child.kill('SIGTERM')
    expect(await proxy.exited).toBe(0)
    for (const w of workers) expect(() => process.kill(w, 0)).toThrow()
  })
})
