// The overload manager under real pressure: a proxy with a small V8 heap fills it with held requests, sheds new requests (503 OM) and connections, finishes what was in flight, and recovers by itself.

import { readFile } from 'node:fs/promises'
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ingressSidecar, loopbackService, yamlStream } from '../harness/istio.ts'
import { createMemoryCgroup, type MemoryCgroup, memoryCgroupSupport } from '../harness/memory-cgroup.ts'
import { freePorts } from '../harness/ports.ts'
import { type ProxyProcess, startProxy } from '../harness/proxy-process.ts'

/** 40 header fields of 1 KiB: each held request keeps about twice that in the proxy's heap (downstream and upstream heads). */
const bigHeaders: Record<string, string> = {}
for (let i = 0; i < 40; i++) bigHeaders[`x-pad-${i}`] = String(i % 10).repeat(1024)

interface Reply {
  readonly status: number
  readonly body: string
}

let proxy: ProxyProcess
let port: number
let app: Server
/** Responses the app holds until the test releases them. */
const held: ServerResponse[] = []
/** The held requests' replies as the client saw them. */
const heldReplies: Promise<Reply | Error>[] = []
/** The keep-alive connection opened before the pressure: its later requests are "new requests" on an accepted connection. */
const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
const bulk = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY })

beforeAll(async () => {
  // The app answers /probe at once and holds /hold (its parser takes the big heads, as an app would).
  app = createServer({ maxHeaderSize: 256 * 1024 }, (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    if (req.url?.startsWith('/hold') === true) held.push(res)
    else res.end('app')
  })
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  ;[port] = await freePorts(1)
  proxy = await startProxy({
    resources: { 'sidecar.yaml': ingressSidecar(port, (app.address() as AddressInfo).port) },
    // A 64 MiB old generation; the proxy's own is about 20 MiB once loaded.
    env: { NODE_OPTIONS: '--max-old-space-size=64' },
    extraBootstrap: `limits:
  maxRequestHeadersKb: 128
overload:
  refreshInterval: 50ms
  actions:
    stopAcceptingRequests: {heap: 0.6}
    rejectIncomingConnections: {heap: 0.6}
    disableHttpKeepalive: {}
telemetry:
  accessLog: {path: logs/access.log, encoding: JSON}
`,
  })
})

afterAll(async () => {
  for (const res of held.splice(0)) res.end()
  keepAlive.destroy()
  bulk.destroy()
  await proxy?.stop()
  await new Promise<void>((resolve) => {
    app?.close(() => resolve())
    app?.closeAllConnections()
  })
})

function get(path: string, agent: Agent, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function stat(name: string): Promise<number> {
  const json = (await (await proxy.admin('/stats?format=json')).json()) as {
    stats: { name: string; value: number }[]
  }
  return json.stats.find((s) => s.name === name)?.value ?? Number.NaN
}

/** Resolves with what a new connection got: `closed` when the proxy closed it without an answer. */
function newConnection(): Promise<'closed' | 'served'> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /probe HTTP/1.1\r\nhost: app\r\n\r\n'))
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      data += chunk
      socket.destroy()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(data === '' ? 'closed' : 'served'))
  })
}

const listenerPrefix = (): string => `listener.127.0.0.1_${port}`
const hcmPrefix = (): string => `http.inbound_127.0.0.1_${port}`
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('overload manager under real heap pressure', () => {
  it('serves normally, then sheds new requests and connections once held requests fill the heap', async () => {
    expect(await get('/probe', keepAlive)).toEqual({ status: 200, body: 'app' })
    expect(await stat('overload.envoy.overload_actions.stop_accepting_requests.active')).toBe(0)
    // Held requests, a batch at a time, until the kept-alive connection's next request is shed.
    let shed: Reply | undefined
    for (let batch = 0; batch < 100 && shed === undefined; batch++) {
      for (let i = 0; i < 10; i++) {
        heldReplies.push(get(`/hold/${batch}/${i}`, bulk, bigHeaders).catch((err: Error) => err))
      }
      await sleep(150)
      const probe = await get('/probe', keepAlive)
      if (probe.status !== 200) shed = probe
    }
    expect(shed).toEqual({ status: 503, body: 'envoy overloaded' })
    expect(held.length).toBeGreaterThan(0)
    expect(await stat('overload.envoy.overload_actions.stop_accepting_requests.active')).toBe(1)
    expect(await stat('overload.outrigger.resource_monitors.v8_heap.pressure')).toBeGreaterThanOrEqual(58)
    expect(await stat(`${hcmPrefix()}.downstream_rq_overload_close`)).toBeGreaterThanOrEqual(1)
    // A new connection is closed at accept, before any byte is read, and counted.
    expect(await newConnection()).toBe('closed')
    expect(await stat(`${listenerPrefix()}.downstream_cx_overload_reject`)).toBeGreaterThanOrEqual(1)
  })

  it('the requests already in flight complete once the app answers', async () => {
    const inFlight = held.length
    for (const res of held.splice(0)) res.end('done')
    const replies = await Promise.all(heldReplies)
    const done = replies.filter((r) => !(r instanceof Error) && r.status === 200 && r.body === 'done')
    expect(done.length).toBe(inFlight)
  })

  it('recovers by itself once the pressure falls: new connections and requests are served again', async () => {
    const deadline = Date.now() + 20_000
    let served = false
    while (!served && Date.now() < deadline) {
      await sleep(200)
      served = (await newConnection()) === 'served'
    }
    expect(served).toBe(true)
    expect(await get('/probe', bulk)).toEqual({ status: 200, body: 'app' })
    expect(await stat('overload.envoy.overload_actions.stop_accepting_requests.active')).toBe(0)
    expect(await stat('overload.envoy.overload_actions.reject_incoming_connections.active')).toBe(0)
  })

  it('the shed requests are in the access log as 503, flag OM, details overload', async () => {
    const file = join(proxy.dir, 'logs', 'access.log')
    const entries = (await readFile(file, 'utf8'))
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const shed = entries.filter((e) => e.response_flags === 'OM')
    expect(shed.length).toBeGreaterThanOrEqual(1)
    for (const e of shed) {
      expect(e.response_code).toBe(503)
      expect(e.response_code_details).toBe('overload')
    }
  })
})

describe('the heap budget', () => {
  it('with worker threads, each gets an equal share of the old generation one node thread would get', async () => {
    const [ingress] = await freePorts(1)
    const proxy2 = await startProxy({
      resources: { 'sidecar.yaml': ingressSidecar(ingress, (app.address() as AddressInfo).port) },
      env: { NODE_OPTIONS: '--max-old-space-size=256' },
      extraBootstrap: 'concurrency: 2\n',
    })
    try {
      // Admin is worker 0's: its old generation is half of 256 MiB, and its heap pressure is measured against it.
      const memory = (await (await proxy2.admin('/memory')).json()) as Record<string, string>
      expect(Number(memory.old_generation_limit)).toBe(128 * 1024 * 1024)
      expect(Number(memory.heap_size_limit)).toBeGreaterThan(128 * 1024 * 1024)
    } finally {
      await proxy2.stop()
    }
  })
})

const cgroup = memoryCgroupSupport()
const MiB = 1024 * 1024

describe.skipIf('skip' in cgroup)(
  `a container memory limit (cgroup v1 memory.limit_in_bytes or v2 memory.max)${'skip' in cgroup ? `: skipped, ${cgroup.skip}` : ''}`,
  () => {
    const limit = 512 * MiB
    let box: MemoryCgroup | undefined

    beforeAll(() => {
      if ('skip' in cgroup) return
      box = createMemoryCgroup(cgroup, `outrigger-overload-${process.pid}`, limit)
    })

    afterAll(() => {
      // The proxies have exited; an empty cgroup is removed with rmdir.
      box?.remove()
    })

    async function memoryInBox(extraBootstrap: string): Promise<Record<string, string>> {
      const [ingress] = await freePorts(1)
      const boxed = await startProxy({
        resources: { 'sidecar.yaml': ingressSidecar(ingress, (app.address() as AddressInfo).port) },
        extraBootstrap,
        launcher: box?.launcher ?? [],
      })
      try {
        return (await (await boxed.admin('/memory')).json()) as Record<string, string>
      } finally {
        await boxed.stop()
      }
    }

    it("the V8 heap is sized from the limit (by the proxy's --max-old-space-size, src/cli/node-settings.ts), and worker threads split it", async () => {
      const single = await memoryInBox('concurrency: 1\n')
      expect(Number(single.constrained_memory)).toBe(limit)
      // Node hands V8 the container's limit (Heap::ConfigureDefaults): the heap fits well inside it, where
      // an unconstrained machine's would be sized from all of its memory.
      const heap = Number(single.heap_size_limit)
      const oldGeneration = Number(single.old_generation_limit)
      expect(heap).toBeLessThan(limit)
      expect(heap).toBeGreaterThan(limit / 8)
      expect(oldGeneration).toBeLessThan(heap)
      // Two workers in the same container: each gets half the old generation one thread got.
      const split = await memoryInBox('concurrency: 2\n')
      expect(Number(split.constrained_memory)).toBe(limit)
      expect(Number(split.old_generation_limit)).toBe(Math.floor(oldGeneration / MiB / 2) * MiB)
    })
  },
)

describe('overload manager: event-loop delay', () => {
  let loopProxy: ProxyProcess
  let ingress: number

  beforeAll(async () => {
    ;[ingress] = await freePorts(1)
    loopProxy = await startProxy({
      resources: { 'sidecar.yaml': ingressSidecar(ingress, (app.address() as AddressInfo).port) },
      // A test-only saturation: a mean delay of 5 ms over a half-second interval, which a loop blocked
      // for the better part of a second by a big reload passes, and an idle one does not.
      extraBootstrap: `overload:
  refreshInterval: 500ms
  eventLoopDelaySaturation: 5ms
  actions:
    stopAcceptingRequests: {eventLoopDelay: 1}
    rejectIncomingConnections: {}
    disableHttpKeepalive: {eventLoopDelay: 1}
`,
    })
  })

  afterAll(async () => {
    await loopProxy?.stop()
  })

  /** GET /probe on a new connection of a keep-alive agent; `connection` is the response's Connection header. */
  function probe(): Promise<Reply & { connection: string | undefined }> {
    const agent = new Agent({ keepAlive: true })
    return new Promise<Reply & { connection: string | undefined }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: ingress, path: '/probe', agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }),
        )
      })
      req.on('error', reject)
      req.end()
    }).finally(() => agent.destroy())
  }

  it('a reload of thousands of services blocks the loop: the requests right after are shed (and not kept alive), then served again', async () => {
    // Idle: served (eventually, should the machine be busy with other tests).
    const idleBy = Date.now() + 10_000
    let idle = await probe()
    while (idle.status !== 200 && Date.now() < idleBy) {
      await sleep(200)
      idle = await probe()
    }
    expect(idle).toEqual({ status: 200, body: 'app', connection: 'keep-alive' })
    // Since the config is read in a child process (src/config/read-config.ts), only compiling the model
    // blocks this loop: 5,000 services no longer did it for long enough, 20,000 do.
    const services = Array.from({ length: 20_000 }, (_, i) =>
      loopbackService(`svc-${i}`, 80, 20_000 + (i % 1000)),
    )
    await loopProxy.writeResource('many.yaml', yamlStream(...services))
    const seen: (Reply & { connection: string | undefined })[] = []
    // The child reads 20,000 documents first (seconds on a busy machine) before the compile blocks the loop.
    const until = Date.now() + 40_000
    while (Date.now() < until) {
      const reply = await probe()
      seen.push(reply)
      // Shed, then served again: done.
      if (reply.status === 200 && seen.some((r) => r.status === 503)) break
      await sleep(20)
    }
    // Shed with keep-alive disabled too (Envoy's disable_http_keepalive on the same trigger), then kept alive again.
    expect(seen.filter((r) => r.status === 503)[0]).toEqual({
      status: 503,
      body: 'envoy overloaded',
      connection: 'close',
    })
    expect(seen.at(-1)).toEqual({ status: 200, body: 'app', connection: 'keep-alive' })
    const log = loopProxy.stderr()
    expect(log).toMatch(
      /overload: envoy\.overload_actions\.stop_accepting_requests active \(heap \d+%, event-loop delay \d+%\)/,
    )
    expect(log).toMatch(/overload: envoy\.overload_actions\.stop_accepting_requests released/)
  }, 60_000)
})
