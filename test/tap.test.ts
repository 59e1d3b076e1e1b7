// Scenario: admin /tap (and `outrigger tap`) against a real proxy and real upstreams: filters line by line, the fields, max, detach on close, drops for a slow reader.

import { type ChildProcess, spawn } from 'node:child_process'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TapEvent } from '../src/live/live-api.ts'
import { send } from './harness/client.ts'
import { egressSidecar, loopbackService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, mainScript, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { answerAfter, echo, startUpstream, type Upstream } from './harness/upstream.ts'

const SLOW_MS = 150

let proxy: ProxyProcess
let egress: number
let app: Upstream
let slow: Upstream
let closedPort: number

beforeAll(async () => {
  // /status/N answers N; anything else is echoed.
  const echoApp = echo('app')
  app = await startUpstream('app', (req, res) => {
    const code = /^\/status\/(\d{3})$/.exec(req.url ?? '')
    if (code === null) return echoApp(req, res)
    req.resume()
    res.writeHead(Number(code[1]), { 'content-length': 0 }).end()
  })
  slow = await startUpstream('slow', answerAfter(SLOW_MS, 'slow'))
  ;[egress, closedPort] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'tap.yaml': yamlStream(
        egressSidecar(egress),
        loopbackService('app', 80, app.port),
        loopbackService('slow', 80, slow.port),
        loopbackService('dead', 80, closedPort),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
  await slow?.close()
})

/** An admin request on its own connection (closed after), so that /memory's counts hold only the request asking. */
function adminGet(path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ port: proxy.adminPort, host: '127.0.0.1', path, agent: false }, resolve)
    req.on('error', reject)
    req.end()
  })
}

async function adminText(path: string): Promise<string> {
  const res = await adminGet(path)
  let text = ''
  for await (const chunk of res) text += chunk
  return text
}

async function tapStats(): Promise<Record<string, number>> {
  const text = await adminText('/stats?filter=^tap\\.')
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => l.split(': '))
      .map(([k, v]) => [k, Number(v)]),
  )
}

async function activeResources(): Promise<Record<string, number>> {
  return (JSON.parse(await adminText('/memory')) as { active_resources: Record<string, number> })
    .active_resources
}

/** An open tap: its lines as they come, the response, and `ended` once the proxy ends the stream. */
interface TapClient {
  readonly res: IncomingMessage
  readonly lines: string[]
  readonly ended: Promise<void>
  events(): TapEvent[]
  close(): void
}

async function openTap(query: string): Promise<TapClient> {
  const res = await adminGet(`/tap?${query}`)
  const lines: string[] = []
  let rest = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    rest += chunk
    const parts = rest.split('\n')
    rest = parts.pop() ?? ''
    lines.push(...parts)
  })
  const ended = new Promise<void>((resolve, reject) => {
    res.once('end', resolve)
    res.once('error', reject)
  })
  ended.catch(() => {})
  return {
    res,
    lines,
    ended,
    events: () =>
      lines
        .map((l) => (l.startsWith('data: ') ? l.slice(6) : l))
        .filter((l) => l.startsWith('{"time"'))
        .map((l) => JSON.parse(l) as TapEvent),
    close: () => res.destroy(),
  }
}

/** What a filter test compares: a request as it was sent and answered. */
const summary = (e: { method: string; authority: string; path: string; status: number }): string =>
  `${e.method} ${e.authority}${e.path} ${e.status}`

interface Sent {
  method: string
  authority: string
  path: string
  status: number
  body?: string
  reply?: string
}

/** Known traffic: each request with the status it must get. */
const traffic: Sent[] = [
  { method: 'GET', authority: 'app', path: '/api/items', status: 200 },
  { method: 'POST', authority: 'app', path: '/api/items?x=1', status: 200, body: 'hello' },
  { method: 'GET', authority: 'app:80', path: '/health', status: 200 },
  { method: 'GET', authority: 'APP', path: '/api/other', status: 200 },
  { method: 'GET', authority: 'app', path: '/status/404', status: 404 },
  { method: 'DELETE', authority: 'app', path: '/api/items/1', status: 200 },
  { method: 'GET', authority: 'slow', path: '/api/slow', status: 200 },
  { method: 'GET', authority: 'dead', path: '/api/dead', status: 503 },
  { method: 'GET', authority: 'nowhere.example', path: '/api/x', status: 404 },
  { method: 'GET', authority: 'app', path: '/status/500', status: 500 },
]

async function sendTraffic(): Promise<void> {
  for (const r of traffic) {
    const reply = await send(egress, r.authority, r.path, { method: r.method, body: r.body })
    expect(reply.status, summary(r)).toBe(r.status)
    r.reply = reply.body
  }
}

describe('admin /tap', () => {
  it('shows each filter exactly the requests it matches, in order, and ends after max', async () => {
    const expected: Record<string, number[]> = {
      '': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      'authority=app': [0, 1, 2, 3, 4, 5, 9],
      'authority=app:80': [2],
      'authority=APP:80': [2],
      'path=/api': [0, 1, 3, 5, 6, 7, 8],
      'path=/api/items': [0, 1, 5],
      'method=post': [1],
      'status=5xx': [7, 9],
      'status=404': [4, 8],
      'status=2xx&authority=slow': [6],
      'authority=app&method=GET&path=/api': [0, 3],
      'direction=outbound&status=4xx': [4, 8],
    }
    const taps = new Map<string, TapClient>()
    for (const [query, indexes] of Object.entries(expected))
      taps.set(query, await openTap(`${query}&max=${indexes.length}`))
    // A tap that nothing matches stays open (no max) and shows nothing.
    const none = await openTap('direction=inbound')
    const started = Date.now()
    await sendTraffic()
    for (const [query, indexes] of Object.entries(expected)) {
      const tap = taps.get(query) as TapClient
      expect(tap.res.statusCode).toBe(200)
      expect(tap.res.headers['content-type']).toBe('application/x-ndjson')
      await tap.ended
      expect(tap.events().map(summary), query).toEqual(indexes.map((i) => summary(traffic[i] as Sent)))
      expect(tap.lines.length, `${query}: no line but events`).toBe(indexes.length)
    }
    expect(none.lines).toEqual([])
    none.close()

    // The fields, from the unfiltered tap.
    const events = (taps.get('') as TapClient).events()
    for (const e of events) {
      expect(e.direction).toBe('outbound')
      expect(e.peer).toBe('')
      expect(e.protocol).toBe('HTTP/1.1')
      expect(e.worker).toBe(0)
      // The x-request-id the router sent upstream; none for a request that was never forwarded.
      expect(e.requestId).toMatch(e.upstreamHost === '' ? /^$/ : /^[0-9a-f-]{36}$/)
      const time = Date.parse(e.time)
      expect(time).toBeGreaterThanOrEqual(started - 5)
      expect(time).toBeLessThanOrEqual(Date.now())
    }
    const [get, post, , , notFound, , slowOne, dead, noRoute, failed] = events as TapEvent[] & { length: 10 }
    expect(get).toMatchObject({
      responseFlags: '-',
      upstreamHost: `127.0.0.1:${app.port}`,
      cluster: 'outbound|80||app.default.svc.cluster.local',
      bytesReceived: 0,
      bytesSent: Buffer.byteLength(traffic[0]?.reply ?? ''),
    })
    expect(post).toMatchObject({ path: '/api/items?x=1', bytesReceived: 5 })
    expect(post?.bytesSent).toBe(Buffer.byteLength(traffic[1]?.reply ?? ''))
    expect(notFound).toMatchObject({ status: 404, responseFlags: '-', upstreamHost: `127.0.0.1:${app.port}` })
    expect(slowOne?.durationMs).toBeGreaterThanOrEqual(SLOW_MS)
    expect(slowOne?.durationMs).toBeLessThan(SLOW_MS + 1000)
    expect(slowOne).toMatchObject({ upstreamHost: `127.0.0.1:${slow.port}`, bytesSent: 4 })
    // Istio's default retry policy (2 retries on connect-failure…) retried it: Envoy flags UF,URX.
    expect(dead).toMatchObject({
      status: 503,
      responseFlags: 'UF,URX',
      upstreamHost: `127.0.0.1:${closedPort}`,
    })
    expect(noRoute).toMatchObject({ status: 404, responseFlags: 'NR', upstreamHost: '', cluster: '' })
    expect(failed).toMatchObject({ status: 500, responseFlags: '-' })
    for (const e of events) expect(e.durationMs).toBeGreaterThanOrEqual(0)
  })

  it('answers 400 with the reason for a bad filter', async () => {
    for (const [query, reason] of [
      ['status=6xx', /status must be/],
      ['max=0', /max must be/],
      ['max=ten', /max must be/],
      ['authority=a/b', /authority/],
      ['path=api', /must start with/],
      ['host=app', /unknown parameter host/],
      ['format=xml', /format must be/],
    ] as const) {
      const res = await adminGet(`/tap?${query}`)
      let body = ''
      for await (const chunk of res) body += chunk
      expect(res.statusCode, query).toBe(400)
      expect(body, query).toMatch(reason)
    }
  })

  it('streams server-sent events', async () => {
    const tap = await openTap('format=sse&authority=app&max=2')
    expect(tap.res.headers['content-type']).toBe('text/event-stream')
    await send(egress, 'app', '/sse/1')
    await send(egress, 'slow', '/not-this-one')
    await send(egress, 'app', '/sse/2')
    await tap.ended
    const data = tap.lines
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as TapEvent)
    expect(data.map((e) => e.path)).toEqual(['/sse/1', '/sse/2'])
    // SSE framing: a comment when attached, each event a `data:` line and a blank line.
    expect(tap.lines).toEqual([
      ': tap attached',
      '',
      expect.stringMatching(/^data: /),
      '',
      expect.stringMatching(/^data: /),
      '',
    ])
  })

  it('detaches at once when the client goes away, leaving nothing behind', async () => {
    await send(egress, 'app', '/warm')
    await eventually(async () => (await tapStats())['tap.streams_active'] === 0)
    const baseline = await activeResources()
    const taps = [await openTap('authority=app'), await openTap('format=sse'), await openTap('')]
    expect((await tapStats())['tap.streams_active']).toBe(3)
    const during = await activeResources()
    // Three more sockets, and the SSE heartbeat's timer.
    expect(during.TCPSocketWrap).toBe((baseline.TCPSocketWrap ?? 0) + 3)
    expect(during.Timeout).toBeGreaterThan(baseline.Timeout ?? 0)
    await send(egress, 'app', '/seen')
    await eventually(async () => taps.every((t) => t.events().length === 1))
    for (const tap of taps) tap.close()
    await eventually(async () => (await tapStats())['tap.streams_active'] === 0)
    await eventually(async () => {
      const now = await activeResources()
      return Object.entries(now).every(([kind, count]) => count <= (baseline[kind] ?? 0))
    })
    // Detached: traffic after the close reaches no tap (a tap opened now sees only what follows).
    const after = await openTap('max=1')
    await send(egress, 'app', '/after')
    await after.ended
    expect(after.events().map((e) => e.path)).toEqual(['/after'])
  })

  it('drops what a slow reader cannot take, bounded, and says how many', async () => {
    const total = 2500
    const longPath = `/big/${'x'.repeat(8000)}`
    const tap = await openTap(`authority=app&max=${total}`)
    tap.res.pause()
    const droppedBefore = (await tapStats())['tap.dropped_events'] ?? 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++
        const reply = await send(egress, 'app', longPath)
        expect(reply.status).toBe(200)
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    const dropped = (await tapStats())['tap.dropped_events'] - droppedBefore
    expect(dropped).toBeGreaterThan(0)
    tap.res.resume()
    await tap.ended
    const events = tap.events()
    const last = JSON.parse(tap.lines.at(-1) ?? '{}') as { dropped?: number }
    expect(last).toEqual({ dropped })
    expect(events.length + dropped).toBe(total)
  }, 60_000)
})

/** `outrigger tap …` as a real process: its output as it comes, and its exit code. */
interface TapCommand {
  readonly child: ChildProcess
  stdout(): string
  stderr(): string
  readonly exited: Promise<number | null>
  /** Resolves once the command says it is attached (stderr `tapping …`). */
  readonly attached: Promise<void>
}

function runTap(...args: string[]): TapCommand {
  const child = spawn(process.execPath, [mainScript, 'tap', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d
  })
  const attached = new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d
      if (err.includes('tapping ')) resolve()
    })
    child.once('exit', () => reject(new Error(`exited before attaching: ${err}`)))
  })
  attached.catch(() => {})
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, stdout: () => out, stderr: () => err, exited, attached }
}

describe('outrigger tap', () => {
  it('prints one aligned line per matching request and exits 0 after --max', async () => {
    const cmd = runTap(
      '--admin',
      `127.0.0.1:${proxy.adminPort}`,
      '--authority',
      'app',
      '--method',
      'GET',
      '--max',
      '2',
    )
    await cmd.attached
    await send(egress, 'app', '/cli/one')
    await send(egress, 'app', '/cli/skipped', { method: 'PUT' })
    await send(egress, 'slow', '/cli/skipped')
    await send(egress, 'dead', '/cli/dead')
    await send(egress, 'app', '/cli/two')
    expect(await cmd.exited).toBe(0)
    const [header, ...rows] = cmd.stdout().trimEnd().split('\n')
    expect(header).toMatch(/^TIME\s+DIR\s+STATUS\s+FLAGS\s+DURATION\s+IN\s+OUT\s+METHOD\s+AUTHORITY PATH/)
    expect(rows).toHaveLength(2)
    for (const [row, path] of [
      [rows[0], '/cli/one'],
      [rows[1], '/cli/two'],
    ] as const) {
      expect(row).toMatch(
        new RegExp(
          `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} +out +200 - +\\d+\\.\\dms +0 +\\d+  GET +app ${path}  → 127\\.0\\.0\\.1:${app.port}  -$`,
        ),
      )
    }
    // The columns line up: each row's fields start where the header's do.
    expect(rows[0]?.indexOf(' GET')).toBe(header?.indexOf(' METHOD'))
  })

  it('prints the JSON lines as received with -o json', async () => {
    const cmd = runTap(
      '--admin',
      `127.0.0.1:${proxy.adminPort}`,
      '--status',
      '5xx',
      '--max',
      '1',
      '-o',
      'json',
    )
    await cmd.attached
    await send(egress, 'app', '/cli/fine')
    await send(egress, 'dead', '/cli/json')
    expect(await cmd.exited).toBe(0)
    const lines = cmd.stdout().trimEnd().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      path: '/cli/json',
      status: 503,
      responseFlags: 'UF,URX',
    })
  })

  it('ends cleanly on Ctrl-C, and the proxy detaches', async () => {
    const cmd = runTap('--admin', `127.0.0.1:${proxy.adminPort}`)
    await cmd.attached
    expect((await tapStats())['tap.streams_active']).toBe(1)
    cmd.child.kill('SIGINT')
    expect(await cmd.exited).toBe(0)
    await eventually(async () => (await tapStats())['tap.streams_active'] === 0)
  })

  it('exits 1 with a clear message when the admin cannot be reached', async () => {
    const [nothing] = await freePorts(1)
    const cmd = runTap('--admin', `127.0.0.1:${nothing}`)
    expect(await cmd.exited).toBe(1)
    expect(cmd.stderr()).toBe(
      `outrigger tap: cannot reach the admin API at 127.0.0.1:${nothing}: ECONNREFUSED\n`,
    )
  })

  it("exits 2 with the proxy's reason for a bad filter", async () => {
    const cmd = runTap('--admin', `127.0.0.1:${proxy.adminPort}`, '--status', '6xx')
    expect(await cmd.exited).toBe(2)
    expect(cmd.stderr()).toMatch(/^outrigger tap: status must be a class/)
  })
})
