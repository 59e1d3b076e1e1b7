// Scenario: a sidecar's life in a pod: ready only when every port is bound, and SIGTERM as Istio's agent drains (inbound accepts on through the drain period and closes each connection after its response, outbound serves on; EXIT_ON_ZERO_ACTIVE_CONNECTIONS).

import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loopbackIngress, loopbackService, sidecar, yamlStream } from './harness/istio.ts'
import { freePort, freePorts } from './harness/ports.ts'
import { eventually, mainScript, type ProxyProcess, startProxy, waitReady } from './harness/proxy-process.ts'
import { answerAfter, startUpstream, type Upstream } from './harness/upstream.ts'

const cleanups: (() => Promise<unknown>)[] = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** GET on a connection of its own (no keep-alive pool): a new connection each time. */
function freshGet(
  port: number,
  host: string,
  path = '/',
): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }))
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * A keep-alive GET on a raw connection: the response's head, and whether the proxy then closed the
 * connection (within `closeWithinMs`) rather than keeping it for another request.
 */
async function keepAliveGet(
  port: number,
  host: string,
  path: string,
  closeWithinMs = 1_000,
): Promise<{ head: string; closedByProxy: boolean }> {
  const socket = connect(port, '127.0.0.1')
  cleanups.push(async () => socket.destroy())
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    received += chunk
  })
  const ended = new Promise<void>((resolve) => socket.once('end', resolve))
  const errored = new Promise<Error>((resolve) => socket.once('error', resolve))
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: keep-alive\r\n\r\n`)
  const failed = await Promise.race([errored, eventually(async () => received.includes('\r\n\r\n'), 5_000)])
  if (failed instanceof Error) throw failed
  const head = received.slice(0, received.indexOf('\r\n\r\n'))
  const closedByProxy = await Promise.race([ended.then(() => true), sleep(closeWithinMs).then(() => false)])
  return { head, closedByProxy }
}

async function readiness(proxy: ProxyProcess): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${proxy.healthPort}/healthz/ready`)
  await res.arrayBuffer()
  return res.status
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface Pod {
  readonly proxy: ProxyProcess
  readonly inbound: number
  readonly outbound: number
}

/** A sidecar in front of a slow app (inbound), routing the app's calls to a fast service `out` (outbound). */
async function pod(options: {
  drain: string
  env?: Record<string, string>
  extraBootstrap?: string
  concurrency?: number
}): Promise<Pod> {
  const app: Upstream = await startUpstream('app', answerAfter(1_000, 'finished'))
  const out: Upstream = await startUpstream('out', (req, res) => {
    req.resume()
    res.end('out')
  })
  cleanups.push(
    () => app.close(),
    () => out.close(),
  )
  const [inbound, outbound] = await freePorts(2)
  const proxy = await startProxy({
    // Worker threads each load the proxy: on a busy machine that takes longer than waitReady's default.
    waitReady: false,
    drain: options.drain,
    env: options.env,
    extraBootstrap: `${options.extraBootstrap ?? ''}concurrency: ${options.concurrency ?? 1}\n`,
    resources: {
      'sidecar.yaml': sidecar({
        ingress: [loopbackIngress(inbound, app.port, 'HTTP', 'http')],
        egress: [{ port: outbound, protocol: 'HTTP', name: 'http' }],
      }),
      'out.yaml': yamlStream(loopbackService('out', outbound, out.port)),
    },
  })
  cleanups.push(() => proxy.stop())
  await waitReady(proxy, 60_000)
  return { proxy, inbound, outbound }
}

describe('SIGTERM drains as Istio agent does', () => {
  for (const concurrency of [1, 2]) {
    it(`inbound accepts through the drain period and closes each connection after its response, outbound serves new connections, then exit 0 (${concurrency} worker${concurrency > 1 ? 's' : ''})`, async () => {
      const { proxy, inbound, outbound } = await pod({ drain: '2500ms', concurrency })
      expect((await freshGet(outbound, 'out')).body).toBe('out')
      const inFlight = freshGet(inbound, 'app', '/work')
      await sleep(200)
      const started = Date.now()
      proxy.child.kill('SIGTERM')
      await eventually(async () => (await readiness(proxy)) === 503, 1_000)
      // Istio's agent asks Envoy for drain_listeners?inboundonly&graceful: through the drain period inbound
      // still accepts (a client whose endpoint removal has not arrived yet is served), and every response
      // closes its connection (HTTP/1.1 `Connection: close`), even one the client asked to keep.
      const late = freshGet(inbound, 'app', '/late')
      const kept = await keepAliveGet(inbound, 'app', '/kept')
      expect(kept.head).toMatch(/^HTTP\/1.1 200/)
      expect(kept.head).toMatch(/\r\nconnection: close/i)
      expect(kept.closedByProxy).toBe(true)
      expect(await late).toEqual({ status: 200, body: 'finished', connection: 'close' })
      // Outbound: the app's own calls still go out, on new connections, kept alive.
      expect(await freshGet(outbound, 'out')).toMatchObject({ status: 200, body: 'out' })
      const outboundKept = await keepAliveGet(outbound, 'out', '/kept', 300)
      expect(outboundKept.head).not.toMatch(/\r\nconnection: close/i)
      expect(outboundKept.closedByProxy).toBe(false)
      expect(await inFlight).toMatchObject({ status: 200, body: 'finished' })
      await sleep(2_000 - (Date.now() - started))
      expect(proxy.child.exitCode).toBe(null)
      expect(await freshGet(outbound, 'out')).toMatchObject({ status: 200, body: 'out' })
      expect(await readiness(proxy)).toBe(503)
      expect(await proxy.exited).toBe(0)
      const drained = Date.now() - started
      expect(drained).toBeGreaterThanOrEqual(2_400)
      expect(drained).toBeLessThan(5_000)
      await expect(freshGet(outbound, 'out')).rejects.toThrow(/ECONNREFUSED/)
      await expect(freshGet(inbound, 'app')).rejects.toThrow(/ECONNREFUSED/)
    }, 90_000)
  }

  it('after the drain period inbound stops accepting while an open connection keeps the process (EXIT_ON_ZERO_ACTIVE_CONNECTIONS)', async () => {
    const { proxy, inbound, outbound } = await pod({
      drain: '1500ms',
      env: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true', MINIMUM_DRAIN_DURATION: '0s' },
    })
    // The app holds a keep-alive connection through its sidecar: the process lives on past the drain period.
    const held: Socket = connect(outbound, '127.0.0.1')
    cleanups.push(async () => held.destroy())
    await new Promise((resolve) => held.once('connect', resolve))
    const started = Date.now()
    proxy.child.kill('SIGTERM')
    await eventually(async () => (await readiness(proxy)) === 503, 1_000)
    // In the drain period: accepted, served, closed after its response.
    const kept = await keepAliveGet(inbound, 'app', '/in-period')
    expect(kept.head).toMatch(/^HTTP\/1.1 200/)
    expect(kept.closedByProxy).toBe(true)
    // After it: the listener is closed (Envoy's stopListeners at the end of the drain sequence).
    await sleep(1_500 + 300 - (Date.now() - started))
    expect(proxy.child.exitCode).toBe(null)
    await expect(freshGet(inbound, 'app')).rejects.toThrow(/ECONNREFUSED/)
    held.destroy()
    expect(await proxy.exited).toBe(0)
  })

  it('EXIT_ON_ZERO_ACTIVE_CONNECTIONS (env): exits once the last connection closes, not while one is open', async () => {
    const { proxy, outbound } = await pod({
      drain: '30s',
      env: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true', MINIMUM_DRAIN_DURATION: '1s' },
    })
    // The app holds a keep-alive connection through its sidecar.
    const held: Socket = connect(outbound, '127.0.0.1')
    cleanups.push(async () => held.destroy())
    await new Promise((resolve) => held.once('connect', resolve))
    const started = Date.now()
    proxy.child.kill('SIGTERM')
    await sleep(2_500)
    expect(proxy.child.exitCode).toBe(null)
    expect(proxy.stderr()).toMatch(/still 1 active connections/)
    // It still carries the app's calls.
    held.write('GET / HTTP/1.1\r\nhost: out\r\n\r\n')
    const reply = await new Promise<string>((resolve) =>
      held.once('data', (d: Buffer) => resolve(d.toString())),
    )
    expect(reply).toMatch(/^HTTP\/1.1 200/)
    const closedAt = Date.now()
    held.destroy()
    expect(await proxy.exited).toBe(0)
    // The next check (each second) sees zero.
    expect(Date.now() - closedAt).toBeLessThan(2_000)
    expect(Date.now() - started).toBeLessThan(6_000)
  })

  it('exitOnZeroActiveConnections (bootstrap): with nothing open, exits after the minimum drain duration, not before', async () => {
    const { proxy } = await pod({
      drain: '30s',
      extraBootstrap: 'exitOnZeroActiveConnections: true\nminimumDrainDuration: 1500ms\n',
    })
    const started = Date.now()
    proxy.child.kill('SIGTERM')
    expect(await proxy.exited).toBe(0)
    const drained = Date.now() - started
    expect(drained).toBeGreaterThanOrEqual(1_500)
    expect(drained).toBeLessThan(3_500)
  })
})

describe('readiness needs every port bound', () => {
  let squatter: Server | undefined
  afterEach(async () => {
    await new Promise((resolve) => squatter?.close(resolve) ?? resolve(undefined))
    squatter = undefined
  })

  async function squat(port: number): Promise<void> {
    squatter = createServer()
    await new Promise<void>((resolve) => squatter?.listen(port, '127.0.0.1', resolve))
  }

  for (const concurrency of [1, 2]) {
    it(`a traffic listener that cannot bind keeps it not ready, with its reason (${concurrency} worker${concurrency > 1 ? 's' : ''})`, async () => {
      const app = await startUpstream('app')
      cleanups.push(() => app.close())
      const [taken, free] = await freePorts(2)
      await squat(taken)
      const proxy = await startProxy({
        waitReady: false,
        extraBootstrap: `concurrency: ${concurrency}\n`,
        resources: {
          'sidecar.yaml': sidecar({
            ingress: [loopbackIngress(free, app.port, 'HTTP', 'http')],
            egress: [{ port: taken, protocol: 'HTTP', name: 'http' }],
          }),
        },
      })
      cleanups.push(() => proxy.stop())
      await eventually(async () => /EADDRINUSE/.test(proxy.stderr()), 15_000)
      await eventually(async () => {
        try {
          return (await readiness(proxy)) === 503
        } catch {
          return false
        }
      }, 15_000)
      const listeners = (await (await proxy.admin('/listeners?format=json')).text()).toString()
      expect(listeners).toContain(String(taken))
      await sleep(500)
      expect(await readiness(proxy)).toBe(503)
    })
  }

  for (const port of ['admin', 'health', 'stats'] as const) {
    it(`the ${port} port taken: exits 1 with the reason`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'outrigger-life-'))
      cleanups.push(() => rm(dir, { recursive: true, force: true }))
      const ports = { admin: await freePort(), health: await freePort(), stats: await freePort() }
      await squat(ports[port])
      await writeFile(
        join(dir, 'bootstrap.yaml'),
        `listeners:
  admin: {port: ${ports.admin}, address: 127.0.0.1}
  health: {port: ${ports.health}, address: 127.0.0.1}
  stats: {port: ${ports.stats}, address: 127.0.0.1}
`,
      )
      const child = spawn(process.execPath, [mainScript, 'run', '--config', join(dir, 'bootstrap.yaml')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
      expect(code).toBe(1)
      expect(stderr).toContain(`${port} listener 127.0.0.1:${ports[port]}`)
      expect(stderr).toMatch(/EADDRINUSE/)
    })
  }
})
