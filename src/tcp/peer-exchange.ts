// Istio's TCP peer metadata exchange on a connection whose TLS chose ALPN istio-peer-exchange: each side writes one frame and reads the other's before app bytes flow.

import type { Socket } from 'node:net'
import {
  EXCHANGE_HEADER_BYTES,
  EXCHANGE_MAGIC,
  MAX_PEER_METADATA_BYTES,
  type PeerMetadataExchange,
} from '../telemetry/peer-metadata-exchange.ts'
import type { WorkloadMetadata } from '../telemetry/workload-metadata.ts'

/** The ALPN by which both sidecars agree to exchange (pilot's mtlsTCPWithMxcALPNs, ALPNInMeshWithMxc). */
export const PEER_EXCHANGE_ALPN = 'istio-peer-exchange'

/**
 * Called once: `peer` is the other side's workload (undefined when it sent no valid frame); `leftover` are
 * bytes read past the frame (or instead of it), which are the peer's first app bytes.
 */
export type PeerExchangeDone = (peer: WorkloadMetadata | undefined, leftover: Buffer | undefined) => void

/**
 * One per connection, as istio-proxy's metadata_exchange network filter (istio/proxy
 * source/extensions/filters/network/metadata_exchange/metadata_exchange.cc) on either side. This side's
 * frame goes out at once (istio-proxy writes its own on its first read or write, so a peer of either kind
 * answers it; a server-first protocol is not held up). The peer's frame is read off the socket, then it
 * is paused for the tunnel. As in istio-proxy, a peer whose first bytes are not the magic number has no
 * exchange filter: those bytes are app data; a peer that closes before a whole frame gives up the
 * exchange, and what it sent goes on. Unlike istio-proxy, which would wait for any length, a frame longer
 * than MAX_PEER_METADATA_BYTES is given up at once (its header dropped, the rest passed on), and a frame
 * whose payload does not decode is dropped rather than passed to the app.
 */
export class PeerExchange {
  readonly #socket: Socket
  readonly #exchange: PeerMetadataExchange
  readonly #done: PeerExchangeDone
  #buffered: Buffer | undefined
  #finished = false

  constructor(socket: Socket, exchange: PeerMetadataExchange, done: PeerExchangeDone) {
    this.#socket = socket
    this.#exchange = exchange
    this.#done = done
  }

  start(): void {
    const socket = this.#socket
    if (socket.destroyed) {
      this.#finish(undefined, undefined)
      return
    }
    socket.write(this.#exchange.frame)
    socket.on('data', this.#onData)
    socket.once('end', this.#onEnd)
    socket.once('close', this.#onEnd)
    socket.resume()
  }

  /** Stops waiting (the other side of the proxy went away): the bytes read so far are app data. */
  abort(): void {
    this.#finish(undefined, this.#buffered)
  }

  readonly #onData = (chunk: Buffer): void => {
    const data = this.#buffered === undefined ? chunk : Buffer.concat([this.#buffered, chunk])
    if (data.length < EXCHANGE_HEADER_BYTES) {
      this.#buffered = data
      return
    }
    if (data.readUInt32BE(0) !== EXCHANGE_MAGIC) {
      this.#finish(undefined, data)
      return
    }
    const length = data.readUInt32BE(4)
    if (length > MAX_PEER_METADATA_BYTES) {
      this.#finish(undefined, rest(data, EXCHANGE_HEADER_BYTES))
      return
    }
    const end = EXCHANGE_HEADER_BYTES + length
    if (data.length < end) {
      this.#buffered = data
      return
    }
    const peer = this.#exchange.fromExchangePayload(data.subarray(EXCHANGE_HEADER_BYTES, end))
    this.#finish(peer, rest(data, end))
  }

  readonly #onEnd = (): void => {
    this.#finish(undefined, this.#buffered)
  }

  #finish(peer: WorkloadMetadata | undefined, leftover: Buffer | undefined): void {
    if (this.#finished) return
    this.#finished = true
    this.#buffered = undefined
    const socket = this.#socket
    socket.off('data', this.#onData)
    socket.off('end', this.#onEnd)
    socket.off('close', this.#onEnd)
    socket.pause()
    this.#done(peer, leftover)
  }
}

function rest(data: Buffer, from: number): Buffer | undefined {
  return data.length > from ? data.subarray(from) : undefined
}
