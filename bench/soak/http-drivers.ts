// The request/response clients of the soak: HTTP/1.1 (undici), HTTP/2 (node:http2) and gRPC (@grpc/grpc-js), each at a fixed rate.

import { type ClientHttp2Session, connect } from 'node:http2'
import { Client, credentials, Metadata } from '@grpc/grpc-js'
import { Pool } from 'undici'
import { unaryMethod } from '../systems/grpc-echo.ts'
import type { Endpoints } from './endpoints.ts'
import type { Generations } from './generations.ts'
import { GENERATION_HEADER } from './resources.ts'
import { Pacer, type Tally } from './tally.ts'

/** Every answer must arrive within this (the route's 10 s timeout plus slack): later counts as lost. */
const ANSWER_TIMEOUT_MS = 12_000
const BODY_BYTES = 512

export interface Driver {
  start(): void
  /** Stops sending and resolves once every request in flight has settled. */
  stop(): Promise<void>
}

/** Counts requests in flight so that stop() can wait for them. */
class InFlight {
  #count = 0
  #drained: (() => void) | undefined

  add(): void {
    this.#count++
  }

  done(): void {
    this.#count--
    if (this.#count === 0) this.#drained?.()
  }

  drained(): Promise<void> {
    return this.#count === 0 ? Promise.resolve() : new Promise((resolve) => (this.#drained = resolve))
  }
}

/**
 * HTTP/1.1 GETs over a keep-alive pool; one request in ten asks for `connection: close` afterwards
 * (undici's `reset`), so downstream connections open and close all run long.
 */
export class Http1Driver implements Driver {
  readonly #pool: Pool
  readonly #pacer: Pacer
  readonly #inFlight = new InFlight()
  readonly #tally: Tally
  readonly #generations: Generations
  readonly #endpoints: Endpoints
  #n = 0

  constructor(port: number, rate: number, tally: Tally, generations: Generations, endpoints: Endpoints) {
    this.#tally = tally
    this.#generations = generations
    this.#endpoints = endpoints
    this.#pool = new Pool(`http://127.0.0.1:${port}`, {
      connections: 16,
      keepAliveTimeout: 30_000,
      headersTimeout: ANSWER_TIMEOUT_MS,
      bodyTimeout: ANSWER_TIMEOUT_MS,
    })
    this.#pacer = new Pacer(rate, () => void this.#send())
  }

  start(): void {
    this.#pacer.start()
  }

  async #send(): Promise<void> {
    const startedAt = performance.now()
    this.#tally.started()
    this.#inFlight.add()
    const epochs = this.#endpoints.epochs()
    let endpoint: string | undefined
    try {
      const res = await this.#pool.request({
        path: '/',
        method: 'GET',
        headers: { host: 'soak-h1' },
        reset: ++this.#n % 10 === 0,
      })
      endpoint = header(res.headers['x-endpoint'])
      const body = await res.body.arrayBuffer()
      this.#generations.seen('http1', header(res.headers[GENERATION_HEADER]))
      if (res.statusCode !== 200)
        this.#tally.fail(`status ${res.statusCode} ${res.headers['x-envoy-response-flags'] ?? ''}`.trim())
      else if (body.byteLength !== BODY_BYTES) this.#tally.fail(`body of ${body.byteLength} bytes`)
      else this.#tally.succeeded(startedAt)
    } catch (err) {
      if (this.#endpoints.killedSince(endpoint, epochs)) this.#tally.dropped++
      else this.#tally.fail(errorName(err))
    } finally {
      this.#inFlight.done()
    }
  }

  async stop(): Promise<void> {
    this.#pacer.stop()
    await this.#inFlight.drained()
    await this.#pool.close()
  }
}

/**
 * HTTP/2 (h2c, prior knowledge) GETs as streams of one session; every 30 s a new session takes over and
 * the old one closes once its streams end, so sessions come and go too.
 */
export class Http2Driver implements Driver {
  readonly #port: number
  readonly #pacer: Pacer
  readonly #inFlight = new InFlight()
  readonly #tally: Tally
  readonly #generations: Generations
  readonly #endpoints: Endpoints
  #session: ClientHttp2Session
  #rotate: NodeJS.Timeout | undefined

  constructor(port: number, rate: number, tally: Tally, generations: Generations, endpoints: Endpoints) {
    this.#port = port
    this.#tally = tally
    this.#generations = generations
    this.#endpoints = endpoints
    this.#session = this.#connect()
    this.#pacer = new Pacer(rate, () => this.#send())
  }

  /** GOAWAY frames the proxy sent on a session this client had not closed (time, error code). */
  readonly goaways: { at: number; code: number }[] = []
  readonly #closedByUs = new WeakSet<ClientHttp2Session>()

  #connect(): ClientHttp2Session {
    const session = connect(`http://127.0.0.1:${this.#port}`)
    session.on('error', () => {})
    session.on('goaway', (code) => {
      if (!this.#closedByUs.has(session)) this.goaways.push({ at: performance.now(), code })
    })
    return session
  }

  start(): void {
    this.#pacer.start()
    this.#rotate = setInterval(() => {
      const old = this.#session
      this.#session = this.#connect()
      // Not at once: nghttp2 sends a GOAWAY ahead of HEADERS still queued in the same tick and then refuses
      // those streams itself (REFUSED_STREAM, with no proxy involved: node:http2 client and server alone do it).
      setTimeout(() => {
        this.#closedByUs.add(old)
        old.close()
      }, 1_000)
    }, 30_000)
  }

  #send(): void {
    const startedAt = performance.now()
    this.#tally.started()
    if (this.#session.closed || this.#session.destroyed) {
      // Only the rotation closes a session on purpose, and it replaces it first: the proxy closed this one.
      this.#tally.fail('client session closed by the proxy')
      this.#session = this.#connect()
      return
    }
    this.#inFlight.add()
    const epochs = this.#endpoints.epochs()
    let endpoint: string | undefined
    let settled = false
    const settle = (failure: string | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (failure === undefined) this.#tally.succeeded(startedAt)
      else if (this.#endpoints.killedSince(endpoint, epochs)) this.#tally.dropped++
      else this.#tally.fail(failure)
      this.#inFlight.done()
    }
    const stream = this.#session.request({ ':method': 'GET', ':path': '/', ':authority': 'soak-h2' })
    const timer = setTimeout(() => {
      stream.close()
      settle('no answer in 12 s')
    }, ANSWER_TIMEOUT_MS)
    let status = 0
    let bytes = 0
    let flags = ''
    stream.on('response', (headers) => {
      status = Number(headers[':status'])
      flags = header(headers['x-envoy-response-flags']) ?? ''
      endpoint = header(headers['x-endpoint'])
      this.#generations.seen('http2', header(headers[GENERATION_HEADER]))
    })
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    stream.on('end', () => {
      if (status !== 200) settle(`status ${status} ${flags}`.trim())
      else if (bytes !== BODY_BYTES) settle(`body of ${bytes} bytes`)
      else settle(undefined)
    })
    stream.on('error', (err) => settle(err.message))
    stream.on('close', () => settle(`stream closed (rst ${stream.rstCode})`))
    stream.end()
  }

  async stop(): Promise<void> {
    this.#pacer.stop()
    clearInterval(this.#rotate)
    await this.#inFlight.drained()
    this.#session.close()
  }
}

/** gRPC unary calls (bytes echoed) over one grpc-js channel with the service's authority. */
export class GrpcDriver implements Driver {
  readonly #client: Client
  readonly #pacer: Pacer
  readonly #inFlight = new InFlight()
  readonly #tally: Tally
  readonly #generations: Generations
  readonly #endpoints: Endpoints
  readonly #payload = Buffer.alloc(256, 'g')

  constructor(port: number, rate: number, tally: Tally, generations: Generations, endpoints: Endpoints) {
    this.#tally = tally
    this.#generations = generations
    this.#endpoints = endpoints
    this.#client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
      'grpc.default_authority': 'soak-grpc',
    })
    this.#pacer = new Pacer(rate, () => this.#send())
  }

  start(): void {
    this.#pacer.start()
  }

  #send(): void {
    const startedAt = performance.now()
    this.#tally.started()
    this.#inFlight.add()
    const epochs = this.#endpoints.epochs()
    let endpoint: string | undefined
    const call = this.#client.makeUnaryRequest<Buffer, Buffer>(
      unaryMethod.path,
      unaryMethod.requestSerialize,
      unaryMethod.responseDeserialize,
      this.#payload,
      new Metadata(),
      { deadline: Date.now() + ANSWER_TIMEOUT_MS },
      (err, reply) => {
        if (err && this.#endpoints.killedSince(endpoint, epochs)) this.#tally.dropped++
        else if (err) this.#tally.fail(`grpc ${err.code} ${err.details}`)
        else if (reply === undefined || !reply.equals(this.#payload)) this.#tally.fail('wrong reply')
        else this.#tally.succeeded(startedAt)
        this.#inFlight.done()
      },
    )
    call.on('metadata', (md) => {
      const value = md.get(GENERATION_HEADER)[0]
      this.#generations.seen('grpc', typeof value === 'string' ? value : undefined)
      const from = md.get('x-endpoint')[0]
      endpoint = typeof from === 'string' ? from : undefined
    })
  }

  async stop(): Promise<void> {
    this.#pacer.stop()
    await this.#inFlight.drained()
    this.#client.close()
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function errorName(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.name
  return String(err)
}
