// Real TCP peers for scenario tests: servers (echo, named replies, server-first banners) and a raw client.

import { spawn } from 'node:child_process'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'

export interface TcpServer {
  readonly server: Server
  readonly port: number
  readonly name: string
  /** Connections accepted so far. */
  readonly accepted: () => number
  close(): Promise<void>
}

export type TcpHandler = (socket: Socket, name: string) => void

/** Echoes every byte back; a FIN from the client is answered with a FIN once the echo is written. */
export const echoHandler: TcpHandler = (socket) => {
  socket.on('error', () => socket.destroy())
  socket.pipe(socket)
}

/** Reads until the client's FIN, then answers `<name>:<bytes read>` and closes (a half-close both ways). */
export const replyAfterEndHandler: TcpHandler = (socket, name) => {
  socket.on('error', () => socket.destroy())
  let bytes = 0
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length
  })
  socket.on('end', () => socket.end(`${name}:${bytes}`))
}

/** A server-first protocol (SMTP, MySQL): greets on connect, then echoes. */
export const bannerHandler: TcpHandler = (socket, name) => {
  socket.on('error', () => socket.destroy())
  socket.write(`220 ${name} ready\r\n`)
  socket.pipe(socket)
}

export async function startTcpServer(name: string, handler: TcpHandler = echoHandler): Promise<TcpServer> {
  let accepted = 0
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted++
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    handler(socket, name)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    server,
    port: (server.address() as AddressInfo).port,
    name,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

export interface Exchange {
  /** Everything received, as latin1 text. */
  readonly text: string
  readonly bytes: number
  /** The peer sent its FIN (an orderly close) rather than resetting or timing out. */
  readonly ended: boolean
  readonly error: string | undefined
  readonly ms: number
}

/**
 * Connects to 127.0.0.1:`port`, writes `data` (if any) and half-closes unless `keepOpen`, then reads
 * until the connection closes or `timeoutMs` passes.
 */
export async function exchange(
  port: number,
  data: string | Buffer | undefined,
  opts: { keepOpen?: boolean; timeoutMs?: number } = {},
): Promise<Exchange> {
  const started = performance.now()
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    const chunks: Buffer[] = []
    let ended = false
    let error: string | undefined
    const timer = setTimeout(() => {
      error = 'timeout'
      socket.destroy()
    }, opts.timeoutMs ?? 5_000)
    socket.on('data', (d: Buffer) => chunks.push(d))
    // The peer's FIN ends the exchange: answer with ours so the connection closes.
    socket.on('end', () => {
      ended = true
      socket.end()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const all = Buffer.concat(chunks)
      resolve({
        text: all.toString('latin1'),
        bytes: all.length,
        ended,
        error,
        ms: performance.now() - started,
      })
    })
    socket.once('connect', () => {
      if (data !== undefined) socket.write(data)
      if (opts.keepOpen !== true) socket.end()
    })
  })
}

/** An open client connection that collects what it receives. */
export interface Client {
  readonly socket: Socket
  received(): string
  /** Resolves once the received text contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>
  readonly closed: Promise<{ ended: boolean; ms: number }>
}

export async function openClient(port: number): Promise<Client> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const started = performance.now()
  let text = ''
  let ended = false
  const waiters = new Set<() => void>()
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1')
    for (const w of waiters) w()
  })
  socket.on('end', () => {
    ended = true
    socket.end()
  })
  socket.on('error', () => {})
  const closed = new Promise<{ ended: boolean; ms: number }>((resolve) =>
    socket.once('close', () => resolve({ ended, ms: performance.now() - started })),
  )
  return {
    socket,
    received: () => text,
    closed,
    waitFor: (wanted, timeoutMs = 5_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!text.includes(wanted)) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`did not receive ${JSON.stringify(wanted)}; got ${JSON.stringify(text)}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      }),
  }
}

/** A port where connections are never established: a connect to it hangs until the client gives up. */
export interface Blackhole {
  readonly port: number
  close(): Promise<void>
}

/**
 * A listening socket that never accepts (a child process blocks its event loop right after listen,
 * backlog 1) whose accept queue is then filled: the kernel drops further SYNs, so connects hang
 * (a connect timeout can be tested on loopback without firewall rules).
 */
export async function startBlackhole(): Promise<Blackhole> {
  const code = `const s = require('node:net').createServer()
s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(s.address().port + '\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000))
})`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
  })
  // Fill the accept queue: connect until one connect does not complete.
  const fillers: Socket[] = []
  for (let i = 0; i < 16; i++) {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.on('error', () => {})
    fillers.push(socket)
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 300)
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    if (!connected) break
  }
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy()
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        await exited
      }
    },
  }
}
