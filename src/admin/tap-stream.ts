// Admin GET /tap: a live stream of the requests a filter matches, as NDJSON lines or server-sent events, from every worker thread.

import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { TapEvent } from '../live/live-api.ts'
import type { TapAttachMessage, TapDetachMessage, TapEventMessage } from '../live/remote-taps.ts'
import { TapFilter, TapFilterError } from '../live/tap-filter.ts'
import type { TapHub } from '../live/tap-hub.ts'
import type { OtherWorkers } from './other-workers.ts'

/** Events queued per stream while its client reads slower than they come; the rest are dropped and counted. */
export const TAP_QUEUE_LIMIT = 1000
/** An SSE comment this often keeps proxies and browsers from closing an idle stream. */
const HEARTBEAT_MS = 15_000

const FILTER_PARAMS = ['authority', 'path', 'method', 'status', 'direction'] as const
const KNOWN_PARAMS = new Set<string>([...FILTER_PARAMS, 'max', 'format'])

interface TapQuery {
  readonly filter: TapFilter
  readonly max: number
  readonly sse: boolean
}

/** The query's filter, bound and format; throws a TapFilterError for a parameter that is wrong. */
export function parseTapQuery(params: URLSearchParams): TapQuery {
  for (const name of params.keys())
    if (!KNOWN_PARAMS.has(name))
      throw new TapFilterError(`unknown parameter ${name} (known: ${[...KNOWN_PARAMS].join(', ')})`)
  const spec: Record<string, string> = {}
  for (const name of FILTER_PARAMS) {
    const value = params.get(name)
    if (value !== null && value !== '') spec[name] = value
  }
  const maxText = params.get('max')
  const max = maxText === null || maxText === '' ? Number.POSITIVE_INFINITY : Number(maxText)
  if (max !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(max) && max > 0))
    throw new TapFilterError(`max must be a whole number ≥ 1, not ${JSON.stringify(maxText)}`)
  const format = params.get('format')
  if (format !== null && format !== 'sse' && format !== 'json' && format !== 'ndjson')
    throw new TapFilterError(`format must be sse or ndjson, not ${JSON.stringify(format)}`)
  return { filter: new TapFilter(spec), max, sse: format === 'sse' }
}

/**
 * Serves one tap. It attaches to this worker's hub (and, with worker threads, has every other worker attach
 * a copy and send it their matches), then answers 200 once all are attached, so any request that ends after
 * the headers arrive is seen. It ends after `max` matching requests (from all workers together), or
 * detaches everywhere at once when the client goes away. A client that reads slower than requests come
 * gets at most TAP_QUEUE_LIMIT queued events; later ones are dropped and counted, and once the queue is
 * written the stream says how many so far (an SSE comment `: dropped N`, an NDJSON line `{"dropped":N}`).
 */
export function serveTap(
  hub: TapHub,
  params: URLSearchParams,
  res: ServerResponse,
  otherWorkers: OtherWorkers | undefined,
): void {
  let query: TapQuery
  try {
    query = parseTapQuery(params)
  } catch (err) {
    if (!(err instanceof TapFilterError)) throw err
    const body = `${err.message}\n`
    res.writeHead(400, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
    res.end(body)
    return
  }
  new TapStream(hub, query, res, otherWorkers).start()
}

/** One client's tap: the local tap, the other workers' copies, the bounded queue, the heartbeat. */
class TapStream {
  readonly #hub: TapHub
  readonly #query: TapQuery
  readonly #res: ServerResponse
  readonly #otherWorkers: OtherWorkers | undefined
  readonly #id = randomUUID()
  readonly #pending: string[] = []
  /** Matching requests seen (written, queued or dropped), from every worker. */
  #seen = 0
  #dropped = 0
  #droppedReported = 0
  #ended = false
  #detach: (() => void)[] = []

  constructor(hub: TapHub, query: TapQuery, res: ServerResponse, otherWorkers: OtherWorkers | undefined) {
    this.#hub = hub
    this.#query = query
    this.#res = res
    this.#otherWorkers = otherWorkers
  }

  start(): void {
    const res = this.#res
    res.once('close', () => this.#close())
    res.on('drain', () => this.#flush())
    const tap = this.#hub.attach(this.#query.filter, this.#query.max, (event) => this.#push(event))
    this.#detach.push(() => tap.detach())
    const others = this.#otherWorkers
    if (others === undefined) {
      this.#open()
      return
    }
    const id = this.#id
    this.#detach.push(
      others.listen('tap-event', (payload) => {
        const message = payload as TapEventMessage
        if (message.id === id) this.#push(message.event)
      }),
      () => others.broadcast('tap-detach', { id } satisfies TapDetachMessage),
    )
    const max = this.#query.max
    const attach: TapAttachMessage = {
      id,
      filter: this.#query.filter.spec,
      max: Number.isFinite(max) ? max : null,
    }
    void others.gather('tap-attach', attach).then(() => this.#open())
  }

  /** The headers, once every worker has attached (events that came meanwhile are already queued). */
  #open(): void {
    const res = this.#res
    if (res.destroyed || res.headersSent) return
    res.writeHead(200, {
      'content-type': this.#query.sse ? 'text/event-stream' : 'application/x-ndjson',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    })
    res.flushHeaders()
    if (this.#query.sse) {
      res.write(': tap attached\n\n')
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS)
      this.#detach.push(() => clearInterval(heartbeat))
    }
    this.#flush()
  }

  #push(event: TapEvent): void {
    if (this.#ended || this.#seen >= this.#query.max) return
    this.#seen++
    const json = JSON.stringify(event)
    const line = this.#query.sse ? `data: ${json}\n\n` : `${json}\n`
    if (this.#res.headersSent && this.#pending.length === 0 && !this.#res.writableNeedDrain)
      this.#res.write(line)
    else if (this.#pending.length < TAP_QUEUE_LIMIT) this.#pending.push(line)
    else {
      this.#dropped++
      this.#hub.droppedTotal++
    }
    if (this.#seen >= this.#query.max) this.#finish()
  }

  /** Writes the queue while the client keeps up; once it is written, reports drops found since the last report. */
  #flush(): void {
    const res = this.#res
    if (!res.headersSent || res.destroyed) return
    while (this.#pending.length > 0 && !res.writableNeedDrain) res.write(this.#pending.shift())
    if (this.#pending.length > 0) return
    if (this.#dropped > this.#droppedReported) {
      this.#droppedReported = this.#dropped
      res.write(
        this.#query.sse
          ? `: dropped ${this.#dropped}\n\n`
          : `${JSON.stringify({ dropped: this.#dropped })}\n`,
      )
    }
    if (this.#ended) this.#end()
  }

  /** `max` reached: detach everywhere now, end the response once the queue is written. */
  #finish(): void {
    this.#ended = true
    this.#release()
    this.#flush()
  }

  #end(): void {
    const res = this.#res
    if (!res.writableEnded) res.end()
  }

  #close(): void {
    this.#ended = true
    this.#pending.length = 0
    this.#release()
  }

  #release(): void {
    const detach = this.#detach
    this.#detach = []
    for (const undo of detach) undo()
  }
}
