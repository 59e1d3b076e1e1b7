// Joins an HTTP/2 stream (an extended CONNECT, RFC 8441) and an upstream socket that switched protocols.

import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { DownstreamResponse } from '../http/downstream.ts'
import type { TunnelStats } from '../tcp/tcp-context.ts'

/**
 * Bytes flow both ways with back-pressure: the stream's DATA frames go to the socket, the socket's
 * bytes go out as DATA frames. A FIN on either side ends the other (END_STREAM / socket end); a reset
 * on either side resets the other. `onClose` runs once, when both are closed.
 */
export class Http2Tunnel {
  readonly #stats: TunnelStats
  readonly #stream: Readable
  readonly #res: DownstreamResponse
  readonly #up: Socket
  readonly #onClose: () => void
  #streamClosed = false
  #upClosed = false

  constructor(
    stats: TunnelStats,
    stream: Readable,
    res: DownstreamResponse,
    upstream: Socket,
    onClose: () => void,
  ) {
    this.#stats = stats
    this.#stream = stream
    this.#res = res
    this.#up = upstream
    this.#onClose = onClose
  }

  /** `head`: bytes the upstream sent right after its 101, already read. */
  start(head: Buffer): void {
    const stream = this.#stream
    const up = this.#up
    if (head.length > 0) {
      this.#stats.bytesSent += head.length
      this.#res.write(head)
    }
    stream.on('data', this.#onStreamData)
    stream.on('end', this.#onStreamEnd)
    stream.on('close', this.#onStreamClose)
    this.#res.on('drain', this.#onStreamDrain)
    up.on('data', this.#onUpData)
    up.on('drain', this.#onUpDrain)
    up.on('end', this.#onUpEnd)
    up.on('error', this.#ignore)
    up.on('close', this.#onUpClose)
    stream.resume()
    up.resume()
  }

  readonly #onStreamData = (chunk: Buffer): void => {
    this.#stats.bytesReceived += chunk.length
    if (!this.#up.write(chunk)) this.#stream.pause()
  }

  readonly #onUpDrain = (): void => {
    this.#stream.resume()
  }

  readonly #onUpData = (chunk: Buffer): void => {
    this.#stats.bytesSent += chunk.length
    if (!this.#res.write(chunk)) this.#up.pause()
  }

  readonly #onStreamDrain = (): void => {
    this.#up.resume()
  }

  readonly #onStreamEnd = (): void => {
    this.#up.end()
  }

  readonly #onUpEnd = (): void => {
    this.#res.end()
  }

  readonly #onStreamClose = (): void => {
    this.#streamClosed = true
    // The client reset the stream (or the session died): the upstream connection goes too.
    if (!this.#upClosed) {
      if (this.#stream.readableEnded) this.#up.end()
      else this.#up.destroy()
    }
    this.#closed()
  }

  readonly #onUpClose = (hadError: boolean): void => {
    this.#upClosed = true
    if (!this.#streamClosed && (hadError || !this.#res.writableEnded)) this.#res.destroy()
    this.#closed()
  }

  readonly #ignore = (): void => {}

  #closed(): void {
    if (!this.#streamClosed || !this.#upClosed) return
    this.#stream.off('data', this.#onStreamData)
    this.#up.off('data', this.#onUpData)
    this.#onClose()
  }
}
