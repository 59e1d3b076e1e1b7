// Opens many keep-alive downstream connections (HTTP/1.1, h2c or Istio mTLS) that each finish one request and then stay open, idle.

import { type ClientHttp2Session, connect as connectHttp2 } from 'node:http2'
import { connect as connectTcp, type Socket } from 'node:net'
import { type ConnectionOptions, connect as connectTls } from 'node:tls'

export type IdleProtocol = 'http1' | 'http2' | 'mtls'

/** What opening the connections needs to know about the listener. */
export interface IdleTarget {
  readonly port: number
  readonly path: string
  /** For `mtls`: the client's mesh certificate, key and root (PEM), as a sidecar would present them. */
  readonly tls?: Pick<ConnectionOptions, 'key' | 'cert' | 'ca'>
}

/** Connections held open by the client; `open` counts those the server has not closed. */
export interface IdleConnections {
  readonly opened: number
  readonly failed: number
  /** 503 answers asked again on their connection (the overload manager shedding while the batch connects). */
  readonly retried: number
  /** The first failure's message, when one failed. */
  readonly firstError?: string
  open(): number
  close(): void
}

/** A 503 is asked again after this pause, up to this many attempts per connection. */
const RETRY_MS = 200
const MAX_ATTEMPTS = 50

interface Retries {
  count: number
}

/** One connection: its request has been answered, and it stays open until closed. */
interface Held {
  readonly isOpen: () => boolean
  readonly close: () => void
}

export interface OpenOptions {
  /** Connections opened at once (default 200). */
  readonly batch?: number
  /** No batch starts after this many milliseconds: fewer than `count` may be opened (see `opened`). */
  readonly stopAfterMs?: number
}

/**
 * Opens `count` connections, `batch` at a time (each batch's requests all answered before the next
 * batch connects, so the listener's accept queue never overflows), each carrying one GET of `path`.
 */
export async function openIdleConnections(
  protocol: IdleProtocol,
  target: IdleTarget,
  count: number,
  { batch = 200, stopAfterMs = Number.POSITIVE_INFINITY }: OpenOptions = {},
): Promise<IdleConnections> {
  const deadline = performance.now() + stopAfterMs
  const held: Held[] = []
  let failed = 0
  let firstError: string | undefined
  const retries: Retries = { count: 0 }
  for (let i = 0; i < count && performance.now() < deadline; i += batch) {
    const results = await Promise.allSettled(
      Array.from({ length: Math.min(batch, count - i) }, () => openOne(protocol, target, retries)),
    )
    for (const r of results) {
      if (r.status === 'fulfilled') held.push(r.value)
      else {
        failed++
        firstError ??= (r.reason as Error).message
      }
    }
  }
  return {
    opened: held.length,
    failed,
    retried: retries.count,
    firstError,
    open: () => held.reduce((n, h) => n + (h.isOpen() ? 1 : 0), 0),
    close: () => {
      for (const h of held) h.close()
    },
  }
}

function openOne(protocol: IdleProtocol, target: IdleTarget, retries: Retries): Promise<Held> {
  if (protocol === 'http2') return openHttp2(target, retries)
  if (protocol === 'http1')
    return openHttp1(connectTcp({ host: '127.0.0.1', port: target.port }), target, retries)
  const socket = connectTls({
    host: '127.0.0.1',
    port: target.port,
    ...target.tls,
    // Istio's ALPN for mTLS between sidecars carrying HTTP/1.1 (pilot's mtlsHTTPALPNs).
    ALPNProtocols: ['istio-http/1.1'],
    // The server presents a SPIFFE identity, not a host name.
    checkServerIdentity: () => undefined,
  })
  return openHttp1(socket, target, retries)
}

/**
 * Writes one GET and resolves once the whole response (by its content-length) has arrived. A 503 (the
 * overload manager shedding while handshakes hold the event loop) is asked again on the same connection.
 */
function openHttp1(socket: Socket, target: IdleTarget, retries: Retries): Promise<Held> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0)
    let closed = false
    let attempts = 0
    const fail = (err: Error): void => {
      socket.destroy()
      reject(err)
    }
    const send = (): void => {
      attempts++
      socket.write(`GET ${target.path} HTTP/1.1\r\nhost: footprint\r\n\r\n`)
    }
    socket.setTimeout(60_000, () => fail(new Error('no response within 60 s')))
    socket.on('error', fail)
    socket.on('close', () => {
      closed = true
      reject(new Error('closed before the response ended'))
    })
    send()
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk])
      const end = received.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = received.toString('latin1', 0, end)
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      if (length === null) {
        fail(new Error(`response without content-length: ${head.split('\r\n')[0]}`))
        return
      }
      if (received.length < end + 4 + Number(length[1])) return
      received = Buffer.alloc(0)
      if (head.startsWith('HTTP/1.1 503 ') && attempts < MAX_ATTEMPTS) {
        retries.count++
        setTimeout(send, RETRY_MS)
        return
      }
      if (!head.startsWith('HTTP/1.1 200 ')) {
        fail(new Error(`answered ${head.split('\r\n')[0]}`))
        return
      }
      socket.off('data', onData)
      socket.setTimeout(0)
      resolve({ isOpen: () => !closed, close: () => socket.destroy() })
    }
    socket.on('data', onData)
  })
}

/** An h2c session with prior knowledge: one stream read to its end (again after a 503); the session stays open. */
function openHttp2(target: IdleTarget, retries: Retries): Promise<Held> {
  return new Promise((resolve, reject) => {
    let closed = false
    let attempts = 0
    const session: ClientHttp2Session = connectHttp2(`http://127.0.0.1:${target.port}`)
    const fail = (err: Error): void => {
      session.destroy()
      reject(err)
    }
    session.on('error', fail)
    session.on('close', () => {
      closed = true
      reject(new Error('session closed before the stream ended'))
    })
    const send = (): void => {
      attempts++
      const stream = session.request({ ':path': target.path, ':authority': 'footprint' })
      let status = 0
      stream.on('response', (headers) => {
        status = Number(headers[':status'])
      })
      stream.on('error', fail)
      stream.resume()
      stream.on('end', () => {
        if (status === 503 && attempts < MAX_ATTEMPTS) {
          retries.count++
          setTimeout(send, RETRY_MS)
        } else if (status !== 200) fail(new Error(`stream answered ${status}`))
        else resolve({ isOpen: () => !closed, close: () => session.destroy() })
      })
    }
    send()
  })
}
