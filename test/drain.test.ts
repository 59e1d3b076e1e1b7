// Scenario: SIGTERM drains as Envoy's graceful drain: the listener accepts on through the drain time, every response closes its connection, in-flight requests finish, then exit 0.

import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { ingressSidecar, loopbackIngress, loopbackService, sidecar, yamlStream } from './harness/istio.ts'
import { freePort, freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy, waitReady } from './harness/proxy-process.ts'
import { answerAfter, startUpstream, type Upstream } from './harness/upstream.ts'

let upstream: Upstream | undefined
let proxy: ProxyProcess | undefined
let out: Upstream | undefined

afterEach(async () => {
  await proxy?.stop()
  await upstream?.close()
  await out?.close()
  proxy = undefined
  upstream = undefined
  out = undefined
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

/** Whether a TCP connection to 127.0.0.1:`port` is accepted (false: refused). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** A sidecar with an inbound port before an app answering at once, and an outbound port to a service `out`. */
async function podProxy(drain: string, concurrency = 1): Promise<{ inbound: number; outbound: number }> {
  upstream = await startUpstream('app', answerAfter(0, 'app'))
  out = await startUpstream('out', answerAfter(0, 'out'))
  const [inbound, outbound] = await freePorts(2)
  proxy = await startProxy({
    drain,
    waitReady: false,
    extraBootstrap: `concurrency: ${concurrency}\n`,
    resources: {
      'sidecar.yaml': sidecar({
        ingress: [loopbackIngress(inbound, upstream.port, 'HTTP', 'http')],
        egress: [{ port: outbound, protocol: 'HTTP', name: 'http' }],
      }),
      'out.yaml': yamlStream(loopbackService('out', outbound, out.port)),
    },
  })
  await waitReady(proxy, 60_000)
  return { inbound, outbound }
}

describe('keep-alive connections through the drain', () => {
  it('a connection whose response began before the drain (no connection: close) closes once that response ends, so EXIT_ON_ZERO_ACTIVE_CONNECTIONS exits', async () => {
    // The app sends its head at once and its body a second later.
    upstream = await startUpstream('app', (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('head-sent ')
      setTimeout(() => res.end('finished'), 1_000)
    })
    const port = await freePort()
    proxy = await startProxy({
      drain: '30s',
      extraBootstrap: 'exitOnZeroActiveConnections: true\nminimumDrainDuration: 0s\n',
      resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
    })
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())))
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write('GET /slow HTTP/1.1\r\nhost: app\r\n\r\n')
    while (!received.includes('head-sent')) await new Promise((r) => setTimeout(r, 20))
    expect(received).not.toMatch(/\r\nconnection: close/i)
    proxy.child.kill('SIGTERM')
    while (!received.includes('finished')) await new Promise((r) => setTimeout(r, 20))
    const answered = Date.now()
    // Kept alive by its head, closed once idle by the drain (not at the 30 s drain time, not at the 1 h idle timeout).
    expect((await closed) - answered).toBeLessThan(500)
    expect(await proxy.exited).toBe(0)
  })
})

describe("admin POST /drain_listeners (Envoy's listeners_handler.cc)", () => {
  it('skip_exit without graceful is refused with 400, as Envoy does', async () => {
    await podProxy('5s')
    const res = await proxy?.admin('/drain_listeners?skip_exit', { method: 'POST' })
    expect(res?.status).toBe(400)
    expect(await res?.text()).toBe('skip_exit requires graceful\n')
  })

  it('without graceful every listener stops accepting at once; the process serves on', async () => {
    const { inbound, outbound } = await podProxy('5s')
    expect(await accepts(inbound)).toBe(true)
    const res = await proxy?.admin('/drain_listeners', { method: 'POST' })
    expect(res?.status).toBe(200)
    expect(await res?.text()).toBe('OK\n')
    expect(await accepts(inbound)).toBe(false)
    expect(await accepts(outbound)).toBe(false)
    expect((await proxy?.admin('/ready'))?.status).toBe(503)
    expect(proxy?.child.exitCode).toBe(null)
  })

  for (const concurrency of [1, 2]) {
    it(`inboundonly&graceful: inbound accepts through the drain period with every response closing its connection, then stops; outbound serves on (${concurrency} worker${concurrency > 1 ? 's' : ''})`, async () => {
      const { inbound, outbound } = await podProxy('1500ms', concurrency)
      const started = Date.now()
      const res = await proxy?.admin('/drain_listeners?inboundonly&graceful', { method: 'POST' })
      expect(res?.status).toBe(200)
      // Several connections, so that with worker threads each worker's listener is met.
      for (let i = 0; i < 6; i++) {
        const reply = await send(inbound, 'app', `/in-period-${i}`)
        expect(reply.status).toBe(200)
        expect(reply.headers.connection).toBe('close')
      }
      expect(Date.now() - started).toBeLessThan(1_400)
      await new Promise((r) => setTimeout(r, 1_500 + 300 - (Date.now() - started)))
      for (let i = 0; i < 6; i++) expect(await accepts(inbound)).toBe(false)
      // Outbound is not drained: its responses keep their connections.
      const reply = await send(outbound, 'out', '/after')
      expect(reply.status).toBe(200)
      expect(reply.headers.connection).not.toBe('close')
      // The listeners stop; the process does not exit (Istio's agent ends it).
      expect(proxy?.child.exitCode).toBe(null)
    }, 90_000)
  }
})
