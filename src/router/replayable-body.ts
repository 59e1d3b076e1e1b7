// A request body streamed to one try at a time while a bounded copy is kept, so a retry can replay it.

import type { Readable } from 'node:stream'

/** Thrown to a try's body reader once a newer try took the body over (the old try is gone already). */
export class BodySupersededError extends Error {
  constructor() {
    super('request body taken over by a retry')
    this.name = 'BodySupersededError'
  }
}

/** Where one try is in the body. */
interface Cursor {
  index: number
  closed: boolean
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true }

/**
 * Envoy's retry buffering: the downstream body streams to the current try while every chunk read is
 * kept; a new try replays the kept chunks from the start, then continues with the live body. The source
 * is read only when the current try asks for more (back-pressure), one read at a time, and a chunk read
 * for a try that was given up meanwhile stays kept for the next. Once more than `limit` bytes were read
 * the copy is dropped (as soon as the current try has it): the body can no longer be replayed.
 */
export class ReplayableBody {
  readonly #body: Readable
  readonly #limit: number
  #source: AsyncIterator<Buffer> | undefined
  #chunks: Buffer[] = []
  #bytes = 0
  #replayable = true
  #ended = false
  #error: unknown
  /** The source read in flight, shared by every try waiting for the next chunk. */
  #read: Promise<void> | undefined
  #current: Cursor | undefined
  readonly #onEnd: ((body: ReplayableBody) => void) | undefined
  readonly #meter: { chunk(chunk: Buffer): void } | undefined

  /** `onEnd` hears when the source ended with the copy whole (for mirrors); `meter` sees each chunk read once. */
  constructor(
    body: Readable,
    limit: number,
    onEnd?: (body: ReplayableBody) => void,
    meter?: { chunk(chunk: Buffer): void },
  ) {
    this.#body = body
    this.#limit = limit
    this.#onEnd = onEnd
    this.#meter = meter
  }

  /** True while a new try can get the whole body (nothing dropped). */
  get replayable(): boolean {
    return this.#replayable
  }

  /** True once reading the source failed (the client went away mid-body): no try can get the body. */
  get failed(): boolean {
    return this.#error !== undefined
  }

  /** The whole body, once the source ended within the bound; undefined otherwise. */
  get whole(): Buffer | undefined {
    return this.#ended && this.#replayable ? Buffer.concat(this.#chunks) : undefined
  }

  /**
   * The body for a new try, from its first byte. An AsyncIterable, not a Readable: undici destroys a
   * Readable body once sent (for HTTP/2 that would reset the downstream stream). The previous try's
   * reader is superseded. Throws when the body is no longer replayable.
   */
  iterable(): AsyncIterableIterator<Buffer> {
    if (!this.#replayable) throw new Error('request body is no longer replayable')
    const cursor: Cursor = { index: 0, closed: false }
    this.#current = cursor
    const iterator: AsyncIterableIterator<Buffer> = {
      next: () => this.#next(cursor),
      return: (): Promise<IteratorResult<Buffer>> => {
        cursor.closed = true
        return Promise.resolve(DONE)
      },
      [Symbol.asyncIterator]: () => iterator,
    }
    return iterator
  }

  /**
   * No more tries will come (the request is over): the copy is dropped once the current try has it.
   * When mirrors still wait for the whole body (the response came before the body ended), the rest is
   * read for them first, within the bound.
   */
  release(): void {
    if (this.#onEnd !== undefined && this.#replayable && !this.#ended && this.#error === undefined) {
      void this.#readRestForMirrors()
      return
    }
    this.#replayable = false
  }

  async #readRestForMirrors(): Promise<void> {
    while (!this.#ended && this.#replayable && this.#error === undefined) {
      this.#read ??= this.#pull()
      await this.#read
    }
    this.#replayable = false
  }

  async #next(cursor: Cursor): Promise<IteratorResult<Buffer>> {
    for (;;) {
      if (cursor.closed) return DONE
      if (cursor !== this.#current) throw new BodySupersededError()
      const chunks = this.#chunks
      if (cursor.index < chunks.length) return { value: chunks[cursor.index++], done: false }
      if (!this.#replayable && chunks.length > 0) {
        // The current try has every kept chunk and no other try will come: drop the copy.
        chunks.length = 0
        cursor.index = 0
      }
      if (this.#error !== undefined) throw this.#error
      if (this.#ended) return DONE
      this.#read ??= this.#pull()
      await this.#read
    }
  }

  async #pull(): Promise<void> {
    // destroyOnReturn false: the body is the downstream's (an HTTP/2 stream carries the response too).
    this.#source ??= this.#body.iterator({ destroyOnReturn: false })
    try {
      const result = await this.#source.next()
      if (result.done === true) {
        this.#ended = true
        if (this.#replayable) this.#onEnd?.(this)
        return
      }
      const chunk = result.value
      this.#bytes += chunk.length
      this.#meter?.chunk(chunk)
      this.#chunks.push(chunk)
      if (this.#bytes > this.#limit) this.#replayable = false
    } catch (err) {
      this.#error = err ?? new Error('request body failed')
    } finally {
      this.#read = undefined
    }
  }
}
