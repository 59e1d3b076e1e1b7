// Counts gRPC messages in a byte stream as it passes (the 5-byte length prefix of each), without copying or buffering.

/**
 * A gRPC message is a 1-byte flag, a 4-byte big-endian length and the payload (gRPC over HTTP/2,
 * Length-Prefixed-Message). A message counts when its prefix starts, as Envoy's Grpc::FrameInspector
 * counts frames for the grpc_stats filter that istio_request_messages_total reads. The state crosses
 * chunk boundaries: a prefix or payload may be split anywhere.
 */
export class GrpcFrameCounter {
  /** Prefix bytes of the current message read so far (0: at a message boundary). */
  #prefixBytes = 0
  #length = 0
  #payloadLeft = 0

  /** The messages that start in `chunk`. */
  count(chunk: Uint8Array): number {
    let messages = 0
    let i = 0
    const n = chunk.length
    while (i < n) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, n - i)
        this.#payloadLeft -= take
        i += take
        continue
      }
      if (this.#prefixBytes === 0) messages++
      else this.#length = this.#length * 256 + chunk[i]
      i++
      if (++this.#prefixBytes === 5) {
        this.#payloadLeft = this.#length
        this.#prefixBytes = 0
        this.#length = 0
      }
    }
    return messages
  }
}
