// Pumps bytes both ways between two sockets with back-pressure, half-close, resets, counts and idle/max-duration timers.

import type { Socket } from 'node:net'
import type { TunnelStats } from './tcp-context.ts'

export interface TunnelOptions {
  /** No bytes either way for this long closes both sides (Envoy's tcp_proxy idle_timeout); 0: never. */
  readonly idleTimeoutMs: number
  /** Both sides close this long after the tunnel starts (max_downstream_connection_duration); 0: never. */
  readonly maxDurationMs: number
  /** Bytes already read from the downstream (while sniffing), sent upstream first. */
  readonly initial?: Buffer | undefined
  /** Bytes already read from the upstream (past its peer-exchange frame), written downstream first. */
  readonly initialFromUpstream?: Buffer | undefined
  /** Called once, when both sockets have closed. */
  readonly onClose?: (() => void) | undefined
}

/** The longest delay Node's timers take. */
const maxTimerMs = 2_147_483_647

/**
 * A FIN from one side half-closes the other (both sockets allow half-open connections); a reset or
 * error on one side resets the other; a side that closes cleanly lets the other flush what it has
 * been given, then closes it. One object per tunnel, handlers as bound fields (no per-chunk closures).
 */
export class Tunnel {
  readonly #stats: TunnelStats
  readonly #down: Socket
  readonly #up: Socket
  readonly #options: TunnelOptions
  #lastActivity = 0
  #idleTimer: NodeJS.Timeout | undefined
  #durationTimer: NodeJS.Timeout | undefined
  #downClosed = false
  #upClosed = false

  constructor(stats: TunnelStats, downstream: Socket, upstream: Socket, options: TunnelOptions) {
    this.#stats = stats
    this.#down = downstream
    this.#up = upstream
    this.#options = options
  }

  start(): void {
    const down = this.#down
    const up = this.#up
    const initial = this.#options.initial
    if (initial !== undefined && initial.length > 0) {
      this.#stats.bytesReceived += initial.length
      up.write(initial)
    }
    const reply = this.#options.initialFromUpstream
    if (reply !== undefined && reply.length > 0) {
      this.#stats.bytesSent += reply.length
      down.write(reply)
    }
    down.on('data', this.#onDownData)
    up.on('data', this.#onUpData)
    up.on('drain', this.#onUpDrain)
    down.on('drain', this.#onDownDrain)
    down.on('end', this.#onDownEnd)
    up.on('end', this.#onUpEnd)
    down.on('error', this.#ignore)
    up.on('error', this.#ignore)
    down.on('close', this.#onDownClose)
    up.on('close', this.#onUpClose)
    this.#lastActivity = performance.now()
    const { idleTimeoutMs, maxDurationMs } = this.#options
    if (idleTimeoutMs > 0)
      this.#idleTimer = setTimeout(this.#onIdleTimer, Math.min(idleTimeoutMs, maxTimerMs))
    if (maxDurationMs > 0) {
      this.#durationTimer = setTimeout(this.#onMaxDuration, Math.min(maxDurationMs, maxTimerMs))
    }
    // Either side may already be gone (or have sent its FIN) before the tunnel started.
    if (down.destroyed) this.#onDownClose(false)
    else if (down.readableEnded) this.#onDownEnd()
    else down.resume()
    if (up.destroyed) this.#onUpClose(false)
    else if (up.readableEnded) this.#onUpEnd()
    else up.resume()
  }

  readonly #onDownData = (chunk: Buffer): void => {
    this.#stats.bytesReceived += chunk.length
    this.#lastActivity = performance.now()
    const up = this.#up
    if (!up.writable) return
    if (!up.write(chunk)) this.#down.pause()
  }

  readonly #onUpData = (chunk: Buffer): void => {
    this.#stats.bytesSent += chunk.length
    this.#lastActivity = performance.now()
    const down = this.#down
    if (!down.writable) return
    if (!down.write(chunk)) this.#up.pause()
  }

  readonly #onUpDrain = (): void => {
    this.#down.resume()
  }

  readonly #onDownDrain = (): void => {
    this.#up.resume()
  }

  /** The client sent its FIN: pass it on (the upstream may still answer). */
  readonly #onDownEnd = (): void => {
    if (this.#up.writable) this.#up.end()
  }

  readonly #onUpEnd = (): void => {
    if (this.#down.writable) this.#down.end()
  }

  /** Errors surface as `close` with hadError; listening here keeps them from being thrown. */
  readonly #ignore = (): void => {}

  readonly #onDownClose = (hadError: boolean): void => {
    if (this.#downClosed) return
    this.#downClosed = true
    closeAfter(this.#up, hadError)
    this.#closed()
  }

  readonly #onUpClose = (hadError: boolean): void => {
    if (this.#upClosed) return
    this.#upClosed = true
    closeAfter(this.#down, hadError)
    this.#closed()
  }

  readonly #onIdleTimer = (): void => {
    const idle = this.#options.idleTimeoutMs
    const quiet = performance.now() - this.#lastActivity
    if (quiet < idle) {
      this.#idleTimer = setTimeout(this.#onIdleTimer, Math.min(idle - quiet + 1, maxTimerMs))
      return
    }
    this.#idleTimer = undefined
    this.#abort('idle_timeout')
  }

  readonly #onMaxDuration = (): void => {
    this.#durationTimer = undefined
    this.#abort('max_duration_timeout')
  }

  #abort(details: string): void {
    if (this.#stats.terminationDetails === '') this.#stats.terminationDetails = details
    this.#down.destroy()
    this.#up.destroy()
  }

  #closed(): void {
    if (!this.#downClosed || !this.#upClosed) return
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer)
    if (this.#durationTimer !== undefined) clearTimeout(this.#durationTimer)
    this.#options.onClose?.()
  }
}

/**
 * The other side of a socket that closed: reset it when the close was an error (a reset travels on
 * as a reset), else let it flush what it was given, send its FIN, and close.
 */
function closeAfter(socket: Socket, hadError: boolean): void {
  if (socket.destroyed) return
  if (hadError) {
    socket.resetAndDestroy()
    return
  }
  if (socket.writableFinished) {
    socket.destroy()
    return
  }
  socket.once('finish', () => socket.destroy())
  socket.end()
}
