// Counts the request body as it passes to the upstream: bytes for istio_request_bytes and, on gRPC, messages.

import type { RequestContext } from '../http/request-context.ts'
import { GrpcFrameCounter } from './grpc-frame-counter.ts'

/** Sees each chunk of a downstream request body once, whichever path sends it (streamed, replayed, read whole). */
export class RequestBodyMeter {
  readonly #ctx: RequestContext
  readonly #frames: GrpcFrameCounter | undefined

  constructor(ctx: RequestContext, grpc: boolean) {
    this.#ctx = ctx
    this.#frames = grpc ? new GrpcFrameCounter() : undefined
  }

  chunk(chunk: Buffer): void {
    const ctx = this.#ctx
    ctx.requestBodyBytes += chunk.length
    if (this.#frames !== undefined) ctx.requestMessages += this.#frames.count(chunk)
  }

  /** The body as undici reads it, each chunk counted on its way (no copy). */
  async *counted(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      this.chunk(chunk)
      yield chunk
    }
  }
}
