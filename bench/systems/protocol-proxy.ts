// What a peer proxy of the HTTP/2 and gRPC cases provides (one h2c port per case, its pids) and the h2c GET that shows it is up.

import { connect } from 'node:http2'
import { waitFor } from '../support/http.ts'

/** A port per case: the h2c upstream of the h2 case and the gRPC upstream of the grpc case, or the proxy's ports in front of them. */
export interface ProtocolPorts {
  readonly h2: number
  readonly grpc: number
}

export interface ProtocolProxy {
  readonly name: 'nginx' | 'haproxy' | 'node-floor'
  /** Where the load generators connect; both ports take h2c with prior knowledge (no TLS, no Upgrade). */
  readonly ports: ProtocolPorts
  /** Root pids of the proxy's processes. */
  readonly pids: readonly number[]
  /** One sentence on what runs and how it talks to the upstreams, for the case's note. */
  readonly detail: string
  stop(): Promise<void>
}

/** One h2c (prior knowledge) GET of `path` on a fresh session to 127.0.0.1:`port`: the status and body size. */
export function h2Get(
  port: number,
  path: string,
  timeoutMs = 2_000,
): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`)
    const timer = setTimeout(() => session.destroy(new Error(`h2c GET :${port}${path} timed out`)), timeoutMs)
    const done = (err: Error | undefined, result?: { status: number; bytes: number }): void => {
      clearTimeout(timer)
      session.close()
      if (err !== undefined) reject(err)
      else if (result !== undefined) resolve(result)
    }
    session.on('error', (err) => done(err))
    const stream = session.request({ ':path': path })
    let status = 0
    let bytes = 0
    stream.on('response', (headers) => {
      status = Number(headers[':status'])
    })
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    stream.on('end', () => done(undefined, { status, bytes }))
    stream.on('error', (err) => done(err))
    stream.end()
  })
}

/** Waits until an h2c GET of `/` on `port` answers 200 with 1 KiB (the h2 upstream's answer through the proxy). */
export function waitH2(port: number, timeoutMs: number, describe: () => string, exited?: Promise<string>) {
  return waitFor(
    async () => {
      const res = await h2Get(port, '/', 500)
      return res.status === 200 && res.bytes === 1024
    },
    timeoutMs,
    describe,
    exited,
  )
}
