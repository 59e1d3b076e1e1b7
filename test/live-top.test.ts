// Scenario: `outrigger top` and admin /live/top under known traffic: exact counts per path, success rates, latencies, two workers merged, and the live view driven in tmux.

import { spawnSync } from 'node:child_process'
import { createServer, request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TopReport, TopRow } from '../src/live/live-api.ts'
import { send } from './harness/client.ts'
import { egressSidecar, loopbackService, yamlStream } from './harness/istio.ts'
import { freePort, freePorts } from './harness/ports.ts'
import { eventually, mainScript, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

/** `/fail…` answers 500, `/slow…` after 30 ms, anything else 200 at once. */
const app: Handler = (req, res) => {
  req.resume()
  const path = req.url ?? '/'
  if (path.startsWith('/fail')) res.writeHead(500).end('failed')
  else if (path.startsWith('/slow')) setTimeout(() => res.end('slow'), 30)
  else res.end('ok')
}

/** The traffic each test sends: count per (method, path), the paths differing in order by count, name and success. */
const traffic = [
  { method: 'GET', path: '/zeta', count: 12 },
  { method: 'GET', path: '/fail', count: 5 },
  { method: 'POST', path: '/slow/alpha', count: 3 },
] as const

let upstream: Upstream
let proxy: ProxyProcess
let egress: number

async function report(p: ProxyProcess, query = 'window=60s'): Promise<TopReport> {
  const res = await p.admin(`/live/top?${query}`)
  expect(res.status).toBe(200)
  return (await res.json()) as TopReport
}

function row(r: TopReport, method: string, path: string): TopRow | undefined {
  return r.rows.find((x) => x.method === method && x.path === path)
}

/** Sends the traffic, each request with its own query string (top keys on the path without it). */
async function sendTraffic(port: number, newConnectionEach = false): Promise<void> {
  for (const { method, path, count } of traffic)
    for (let i = 0; i < count; i++) {
      const target = `${path}?n=${i}`
      const status = newConnectionEach
        ? await freshConnection(port, method, target)
        : (await send(port, 'app', target, { method })).status
      expect(status).toBe(path === '/fail' ? 500 : 200)
    }
}

/** One request on a new connection (Connection: close), so two workers' SO_REUSEPORT both get some. */
function freshConnection(port: number, method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { port, host: '127.0.0.1', method, path, agent: false, headers: { host: 'app' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

async function trafficCounted(p: ProxyProcess): Promise<void> {
  const total = traffic.reduce((s, t) => s + t.count, 0)
  await eventually(async () => (await report(p)).rows.reduce((s, r) => s + r.count, 0) >= total)
}

beforeAll(async () => {
  upstream = await startUpstream('app', app)
  egress = await freePort()
  proxy = await startProxy({
    extraBootstrap: 'live: {enabled: true}\n',
    resources: { 'all.yaml': yamlStream(egressSidecar(egress), loopbackService('app', 80, upstream.port)) },
  })
  await sendTraffic(egress)
  await trafficCounted(proxy)
})

afterAll(async () => {
  await proxy?.stop()
  await upstream?.close()
})

describe('admin /live/top', () => {
  it('counts each (method, path) exactly, without the query, with its success rate and latencies', async () => {
    const r = await report(proxy)
    expect(r.windowSeconds).toBe(60)
    expect(Date.now() - Date.parse(r.at)).toBeLessThan(10_000)
    expect(r.rows.map((x) => [x.direction, x.method, x.authority, x.path, x.count, x.countError])).toEqual([
      ['outbound', 'GET', 'app', '/zeta', 12, 0],
      ['outbound', 'GET', 'app', '/fail', 5, 0],
      ['outbound', 'POST', 'app', '/slow/alpha', 3, 0],
    ])
    expect(row(r, 'GET', '/zeta')?.successRate).toBe(1)
    expect(row(r, 'GET', '/fail')?.successRate).toBe(0)
    for (const x of r.rows) {
      expect(x.latencyMs.best).toBeGreaterThan(0)
      expect(x.latencyMs.best).toBeLessThanOrEqual(x.latencyMs.last)
      expect(x.latencyMs.last).toBeLessThanOrEqual(x.latencyMs.worst)
    }
    // The upstream held each /slow request 30 ms.
    expect(row(r, 'POST', '/slow/alpha')?.latencyMs.best).toBeGreaterThanOrEqual(29)
    expect(row(r, 'GET', '/zeta')?.latencyMs.best).toBeLessThan(30)
  })

  it('limits the rows and checks its parameters', async () => {
    expect((await report(proxy, 'window=60s&limit=1')).rows.map((x) => x.path)).toEqual(['/zeta'])
    expect((await proxy.admin('/live/top?window=soon')).status).toBe(400)
    expect((await proxy.admin('/live/top?limit=-1')).status).toBe(400)
    // The default window is 10 s and a longer one is clamped to the minute kept.
    expect((await report(proxy, '')).windowSeconds).toBe(10)
    expect((await report(proxy, 'window=1h')).windowSeconds).toBe(60)
  })

  it('answers 404 with the reason when the live view is off', async () => {
    const off = await startProxy({
      resources: { 'all.yaml': egressSidecar(await freePort()) },
      extraBootstrap: 'live: {enabled: false}\n',
    })
    try {
      const res = await off.admin('/live/top')
      expect(res.status).toBe(404)
      expect(await res.text()).toContain('live.enabled: false')
    } finally {
      await off.stop()
    }
  })

  it('stays bounded under a flood of distinct paths, the heavy hitter on top with an honest count', async () => {
    const port = await freePort()
    const flooded = await startProxy({
      extraBootstrap: 'live: {enabled: true}\n',
      resources: { 'all.yaml': yamlStream(egressSidecar(port), loopbackService('app', 80, upstream.port)) },
    })
    try {
      const distinct = 1500
      let heavy = 0
      // In batches, so that each second brings well over the table's 200 distinct paths.
      for (let i = 0; i < distinct; i += 30) {
        const batch: Promise<unknown>[] = []
        for (let j = i; j < i + 30; j++) {
          batch.push(send(port, 'app', `/flood/${j}`))
          if (j % 3 === 0) {
            batch.push(send(port, 'app', '/heavy'))
            heavy++
          }
        }
        await Promise.all(batch)
      }
      await eventually(
        async () => (await report(flooded, 'window=60s&limit=1000')).rows[0]?.path === '/heavy',
      )
      const r = await report(flooded, 'window=60s&limit=1000')
      // At most the capacity of the table, however many distinct paths came.
      expect(r.rows.length).toBeLessThanOrEqual(200)
      const [top] = r.rows
      expect(top?.path).toBe('/heavy')
      expect(top?.count).toBeGreaterThanOrEqual(heavy)
      expect((top?.count ?? 0) - (top?.countError ?? 0)).toBeLessThanOrEqual(heavy)
      // Flooded rows were evicted somewhere, so their counts are marked as estimates.
      expect(r.rows.some((x) => x.countError > 0)).toBe(true)
    } finally {
      await flooded.stop()
    }
  })

  it('with two workers, merges both tables into exact counts', async () => {
    const port = await freePort()
    const two = await startProxy({
      extraBootstrap: 'concurrency: 2\nlive: {enabled: true}\n',
      resources: { 'all.yaml': yamlStream(egressSidecar(port), loopbackService('app', 80, upstream.port)) },
    })
    try {
      await sendTraffic(port, true)
      const listeners = (await (await two.admin('/listeners?format=json')).json()) as {
        address: string
        worker_downstream_cx_total: number[]
      }[]
      const perWorker = listeners.find((l) => l.address.endsWith(`:${port}`))?.worker_downstream_cx_total
      // Both workers served some of the 20 connections, so worker 0 alone would count too few.
      expect(perWorker?.length).toBe(2)
      expect(perWorker?.every((n) => n > 0)).toBe(true)
      await trafficCounted(two)
      const r = await report(two)
      expect(r.rows.map((x) => [x.method, x.path, x.count, x.countError])).toEqual(
        traffic.map((t) => [t.method, t.path, t.count, 0]),
      )
      expect(row(r, 'GET', '/fail')?.successRate).toBe(0)
    } finally {
      await two.stop()
    }
  })
})

/** A private tmux server (its own socket) running one command in a 160×40 window. */
class Tmux {
  readonly #socket = `outrigger-top-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  readonly session = 'top'

  constructor(command: string) {
    this.#run('new-session', '-d', '-s', this.session, '-x', '160', '-y', '40', command)
  }

  screen(): string {
    return this.#run('capture-pane', '-p', '-t', this.session)
  }

  resize(width: number, height: number): void {
    this.#run('resize-window', '-t', this.session, '-x', String(width), '-y', String(height))
  }

  keys(...keys: string[]): void {
    this.#run('send-keys', '-t', this.session, ...keys)
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.#socket, 'kill-server'])
  }

  async waitFor(check: (screen: string) => boolean, what: string): Promise<string> {
    let last = ''
    try {
      await eventually(async () => {
        last = this.screen()
        return check(last)
      }, 15_000)
    } catch {
      throw new Error(`screen never showed ${what}:\n${last}`)
    }
    return last
  }

  #run(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.#socket, ...args], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`)
    return r.stdout
  }
}

/** The shell command tmux runs: top, then its exit code on the main screen (the pane stays to be read). */
function topCommand(admin: string, ...flags: string[]): string {
  return `${process.execPath} ${mainScript} top --admin ${admin} ${flags.join(' ')}; echo "top exited $?"; sleep 60`
}

/** The table's paths, top to bottom, as the screen shows them. */
function shownPaths(screen: string): string[] {
  return screen
    .split('\n')
    .filter((l) => /^out\s/.test(l))
    .map((l) => l.split(/\s+/)[3] as string)
}

const hasTmux = spawnSync('tmux', ['-V']).status === 0
if (!hasTmux)
  console.warn(
    'live-top.test.ts: the tmux tests skipped: no `tmux` (scripts/install-test-tools.sh installs it)',
  )

describe.skipIf(!hasTmux)('outrigger top in a terminal (tmux)', () => {
  it('shows the busiest paths, sorts by the key pressed, and leaves the screen as it was on q', async () => {
    const tmux = new Tmux(topCommand(`127.0.0.1:${proxy.adminPort}`, '--window', '60s'))
    try {
      let screen = await tmux.waitFor((s) => s.includes('/zeta'), 'the rows')
      const [header] = screen.split('\n')
      expect(header).toContain(`admin 127.0.0.1:${proxy.adminPort}`)
      expect(header).toContain('window 60s')
      expect(header).toMatch(/refreshed \d\d:\d\d:\d\d/)
      expect(header).toContain('sort count ↓')
      expect(screen).toMatch(/DIR\s+METHOD\s+AUTHORITY\s+PATH\s+COUNT\s+SUCCESS\s+BEST\s+WORST\s+LAST/)
      expect(screen.split('\n').at(-2) ?? screen.split('\n').at(-1)).toContain('q quit')
      expect(shownPaths(screen)).toEqual(['/zeta', '/fail', '/slow/alpha'])
      expect(screen).toMatch(/out\s+GET\s+app\s+\/zeta\s+12\s+100\.00%/)
      expect(screen).toMatch(/out\s+GET\s+app\s+\/fail\s+5\s+0\.00%/)
      tmux.keys('p')
      screen = await tmux.waitFor((s) => s.includes('sort path ↑'), 'the path sort')
      expect(shownPaths(screen)).toEqual(['/fail', '/slow/alpha', '/zeta'])
      tmux.keys('p')
      screen = await tmux.waitFor((s) => s.includes('sort path ↓'), 'the reversed path sort')
      expect(shownPaths(screen)).toEqual(['/zeta', '/slow/alpha', '/fail'])
      tmux.keys('w')
      screen = await tmux.waitFor((s) => s.includes('sort worst ↓'), 'the worst-latency sort')
      const byWorst = [...(await report(proxy)).rows].sort((a, b) => b.latencyMs.worst - a.latencyMs.worst)
      expect(shownPaths(screen)).toEqual(byWorst.map((x) => x.path))
      tmux.keys('q')
      screen = await tmux.waitFor((s) => s.includes('top exited'), 'the exit')
      expect(screen).toContain('top exited 0')
      // The alternate screen is gone: the main screen has no table on it.
      expect(screen).not.toContain('/zeta')
      expect(screen).not.toContain('COUNT')
    } finally {
      tmux.kill()
    }
  })

  it('exits 0 on Ctrl-C and restores the screen', async () => {
    const tmux = new Tmux(topCommand(`127.0.0.1:${proxy.adminPort}`))
    try {
      await tmux.waitFor((s) => s.includes('COUNT'), 'the table')
      tmux.keys('C-c')
      const screen = await tmux.waitFor((s) => s.includes('top exited'), 'the exit')
      expect(screen).toContain('top exited 0')
      expect(screen).not.toContain('COUNT')
    } finally {
      tmux.kill()
    }
  })

  it('shows an unreachable admin in the header and keeps retrying until it answers', async () => {
    const [port] = await freePorts(1)
    const tmux = new Tmux(topCommand(`127.0.0.1:${port}`, '--window', '60s'))
    // An admin that comes up late, answering one row.
    const late = createServer((req, res) => {
      const report: TopReport = {
        windowSeconds: 60,
        at: new Date().toISOString(),
        rows: [
          {
            direction: 'inbound',
            method: 'GET',
            authority: 'late',
            path: '/recovered',
            count: 7,
            countError: 0,
            successRate: 1,
            latencyMs: { best: 1, worst: 3, last: 2 },
          },
        ],
      }
      res.writeHead(req.url?.startsWith('/live/top?') ? 200 : 404).end(JSON.stringify(report))
    })
    try {
      const screen = await tmux.waitFor((s) => s.includes('cannot reach'), 'the error')
      expect(screen.split('\n')[0]).toContain(
        `cannot reach the admin API at 127.0.0.1:${port}: ECONNREFUSED (retrying)`,
      )
      expect(screen).toContain('refreshed never')
      await new Promise<void>((resolve) => late.listen(port, '127.0.0.1', resolve))
      const recovered = await tmux.waitFor((s) => s.includes('/recovered'), 'the rows once admin answers')
      expect(recovered.split('\n')[0]).not.toContain('ERROR')
      expect(recovered).toMatch(/in\s+GET\s+late\s+\/recovered\s+7\s+100\.00%\s+1\.0ms\s+3\.0ms\s+2\.0ms/)
      tmux.keys('q')
      expect(await tmux.waitFor((s) => s.includes('top exited'), 'the exit')).toContain('top exited 0')
    } finally {
      tmux.kill()
      late.close()
    }
  })

  it('fits the table to a resized terminal: the path column cut, the rows to the height', async () => {
    const tmux = new Tmux(topCommand(`127.0.0.1:${proxy.adminPort}`, '--window', '60s'))
    try {
      await tmux.waitFor((s) => s.includes('/slow/alpha'), 'the rows')
      tmux.resize(72, 7)
      const screen = await tmux.waitFor((s) => s.includes('/slow/a…'), 'the cut path')
      const lines = screen.replace(/\n$/, '').split('\n')
      expect(lines).toHaveLength(7)
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(72)
      // Header, blank, titles, three rows, footer.
      expect(shownPaths(screen)).toEqual(['/zeta', '/fail', '/slow/a…'])
      expect(lines[6]).toMatch(/^c count/)
      tmux.resize(72, 6)
      // One row less room: the least busy row goes.
      await tmux.waitFor((s) => !s.includes('/slow/a'), 'the shorter table')
      expect(shownPaths(tmux.screen())).toEqual(['/zeta', '/fail'])
      tmux.keys('q')
      expect(await tmux.waitFor((s) => s.includes('top exited'), 'the exit')).toContain('top exited 0')
    } finally {
      tmux.kill()
    }
  })
})

describe('outrigger top, not on a terminal', () => {
  it('prints one table, busiest first, and exits 0', () => {
    const r = spawnSync(
      process.execPath,
      [mainScript, 'top', '--admin', `127.0.0.1:${proxy.adminPort}`, '--window', '60s'],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    )
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^DIR\s+METHOD\s+AUTHORITY\s+PATH\s+COUNT/)
    expect(lines.slice(1).map((l) => l.split(/\s+/)[3])).toEqual(['/zeta', '/fail', '/slow/alpha'])
    expect(r.stdout).not.toContain('\x1b[')
  })

  it('exits 1 with the reason when admin does not answer', async () => {
    const [port] = await freePorts(1)
    const r = spawnSync(process.execPath, [mainScript, 'top', '--admin', `127.0.0.1:${port}`], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('cannot reach the admin API')
  })
})
