// Unit tests for the byte tunnel: counts, half-close both ways, resets, initial bytes, idle and max-duration timers.

import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { TunnelStats } from './tcp-context.ts'
import { Tunnel, type TunnelOptions } from './tunnel.ts'

const servers: Server[] = []

afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

async function listen(handler: (socket: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

interface Run {
  readonly stats: TunnelStats
  readonly tunnelClosed: Promise<void>
  readonly client: Socket
  received(): string
  readonly clientClosed: Promise<{ ended: boolean; error: string | undefined }>
}

/** A client → tunnel → `upstream` setup, all in this process. */
async function tunnelTo(
  upstream: (socket: Socket) => void,
  options: Omit<TunnelOptions, 'onClose'>,
): Promise<Run> {
  const upstreamPort = await listen(upstream)
  const stats: TunnelStats = { bytesReceived: 0, bytesSent: 0, terminationDetails: '' }
  let closedTunnel: () => void = () => {}
  const tunnelClosed = new Promise<void>((resolve) => {
    closedTunnel = resolve
  })
  const proxyPort = await listen((down) => {
    down.pause()
    const up = connect({ port: upstreamPort, host: '127.0.0.1', allowHalfOpen: true })
    up.once('connect', () => new Tunnel(stats, down, up, { ...options, onClose: closedTunnel }).start())
  })
  const client = connect({ port: proxyPort, host: '127.0.0.1', allowHalfOpen: true })
  let text = ''
  let ended = false
  let error: string | undefined
  client.on('data', (d: Buffer) => {
    text += d.toString()
  })
  client.on('end', () => {
    ended = true
    client.end()
  })
  client.on('error', (err: NodeJS.ErrnoException) => {
    error = err.code
  })
  const clientClosed = new Promise<{ ended: boolean; error: string | undefined }>((resolve) =>
    client.once('close', () => resolve({ ended, error })),
  )
  await new Promise((resolve) => client.once('connect', resolve))
  return { stats, tunnelClosed, client, received: () => text, clientClosed }
}

const noLimits = { idleTimeoutMs: 0, maxDurationMs: 0 }

describe('Tunnel', () => {
  it('counts bytes both ways and carries each FIN across, the server answering after the client FIN', async () => {
    const run = await tunnelTo((socket) => {
      let n = 0
      socket.on('data', (d: Buffer) => {
        n += d.length
      })
      socket.on('end', () => socket.end(`got ${n}`))
    }, noLimits)
    run.client.end('x'.repeat(100_000))
    expect(await run.clientClosed).toEqual({ ended: true, error: undefined })
    await run.tunnelClosed
    expect(run.received()).toBe('got 100000')
    expect(run.stats).toEqual({ bytesReceived: 100_000, bytesSent: 10, terminationDetails: '' })
  })

  it('sends the initial (sniffed) bytes first and counts them', async () => {
    const run = await tunnelTo((socket) => socket.pipe(socket), {
      ...noLimits,
      initial: Buffer.from('first,'),
    })
    run.client.end('then')
    await run.clientClosed
    expect(run.received()).toBe('first,then')
    expect(run.stats.bytesReceived).toBe(10)
  })

  it('writes bytes already read from the upstream (past a peer-exchange frame) downstream first, counted as sent', async () => {
    const run = await tunnelTo(
      (socket) => {
        socket.resume()
        socket.on('end', () => socket.end('-banner'))
      },
      { ...noLimits, initialFromUpstream: Buffer.from('read-early') },
    )
    run.client.end()
    await run.clientClosed
    expect(run.received()).toBe('read-early-banner')
    expect(run.stats.bytesSent).toBe(17)
  })

  it('passes on an upstream FIN that came before the tunnel started (while the peer exchange read)', async () => {
    const upstreamPort = await listen((socket) => socket.end())
    const stats: TunnelStats = { bytesReceived: 0, bytesSent: 0, terminationDetails: '' }
    const proxyPort = await listen((down) => {
      down.pause()
      const up = connect({ port: upstreamPort, host: '127.0.0.1', allowHalfOpen: true })
      up.resume()
      up.once('end', () => {
        up.pause()
        new Tunnel(stats, down, up, noLimits).start()
      })
    })
    const client = connect({ port: proxyPort, host: '127.0.0.1', allowHalfOpen: true })
    client.resume()
    const ended = await new Promise<boolean>((resolve) => {
      client.once('end', () => resolve(true))
      setTimeout(() => resolve(false), 2_000)
    })
    client.destroy()
    expect(ended).toBe(true)
  })

  it('passes a reset from the upstream on as a reset', async () => {
    const run = await tunnelTo((socket) => socket.once('data', () => socket.resetAndDestroy()), noLimits)
    run.client.write('boom')
    expect((await run.clientClosed).error).toBe('ECONNRESET')
    await run.tunnelClosed
  })

  it('closes both sides after the idle timeout, not while bytes flow', async () => {
    const run = await tunnelTo((socket) => socket.pipe(socket), { idleTimeoutMs: 150, maxDurationMs: 0 })
    const started = performance.now()
    for (let i = 0; i < 4; i++) {
      run.client.write('.')
      await new Promise((r) => setTimeout(r, 80))
    }
    await run.tunnelClosed
    // The last byte went at 3 × 80 ms; the idle clock starts again there.
    expect(performance.now() - started).toBeGreaterThanOrEqual(3 * 80 + 140)
    expect(run.stats.terminationDetails).toBe('idle_timeout')
    expect(run.received()).toBe('....')
  })

  it('closes both sides after the maximum duration', async () => {
    const run = await tunnelTo((socket) => socket.pipe(socket), { idleTimeoutMs: 0, maxDurationMs: 100 })
    await run.tunnelClosed
    expect(run.stats.terminationDetails).toBe('max_duration_timeout')
  })
})
