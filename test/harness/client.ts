// A plain HTTP/1.1 client for scenario tests (undici.request, which lets a test set the Host header).

import { connect } from 'node:net'
import { request } from 'undici'

export interface Reply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

export async function send(
  port: number,
  host: string,
  path = '/',
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const res = await request(`http://127.0.0.1:${port}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { host, ...init.headers },
    body: init.body,
  })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

/** The echo upstream's JSON body. */
export interface Echoed {
  name: string
  method: string
  url: string
  headers: Record<string, string>
}

export function echoed(reply: Reply): Echoed {
  return JSON.parse(reply.body) as Echoed
}

/** Writes raw bytes on a fresh connection and returns everything read until the server closes or goes quiet. */
export async function sendRaw(port: number, data: string | Buffer, quietMs = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let timer: NodeJS.Timeout | undefined
    const done = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(Buffer.concat(chunks).toString('latin1'))
    }
    socket.on('data', (d: Buffer) => {
      chunks.push(d)
      clearTimeout(timer)
      timer = setTimeout(done, quietMs)
    })
    socket.on('end', done)
    socket.on('error', reject)
    socket.write(data)
  })
}
