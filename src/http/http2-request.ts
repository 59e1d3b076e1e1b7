// An HTTP/2 stream's request side, seen through the DownstreamRequest shape the filters read.

import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { DownstreamRequest } from './downstream.ts'

/**
 * Pseudo-headers become `method` and `url`, `:authority` becomes the first `host` header (so routing and
 * the HTTP/1.1 translation read it as they read Host), and split `cookie` fields are joined with `; `
 * as RFC 9113 §8.2.3 requires before a request goes to HTTP/1.1.
 */
export class Http2Request implements DownstreamRequest {
  readonly method: string
  url: string
  readonly rawHeaders: string[]
  readonly httpVersionMajor = 2
  readonly socket: Socket
  /** The `:protocol` of an extended CONNECT (RFC 8441), e.g. `websocket`. */
  readonly upgradeProtocol: string | undefined
  readonly #stream: ServerHttp2Stream
  #headers: IncomingHttpHeaders | undefined

  constructor(stream: ServerHttp2Stream, raw: readonly string[], socket: Socket) {
    this.#stream = stream
    this.socket = socket
    let method = 'GET'
    let url = ''
    let authority: string | undefined
    let protocol: string | undefined
    let hasKey = false
    let cookieAt = -1
    const headers: string[] = ['host', '']
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]
      const value = raw[i + 1]
      if (name.charCodeAt(0) === 0x3a /* : */) {
        if (name === ':method') method = value
        else if (name === ':path') url = value
        else if (name === ':authority') authority = value
        else if (name === ':protocol') protocol = value
        continue
      }
      if (name === 'sec-websocket-key') hasKey = true
      if (name === 'host') {
        authority ??= value
        continue
      }
      if (name === 'cookie') {
        if (cookieAt !== -1) {
          headers[cookieAt] = `${headers[cookieAt]}; ${value}`
          continue
        }
        cookieAt = headers.length + 1
      }
      headers.push(name, value)
    }
    if (authority === undefined) headers.splice(0, 2)
    else headers[1] = authority
    if (method === 'CONNECT' && protocol !== undefined) {
      // RFC 8441's extended CONNECT is HTTP/1.1's GET with Upgrade (Envoy's transformUpgradeRequestFromH2toH1);
      // an HTTP/1.1 WebSocket server needs the key that HTTP/2 clients do not send.
      method = 'GET'
      headers.push('upgrade', protocol)
      if (protocol.toLowerCase() === 'websocket' && !hasKey) {
        headers.push('sec-websocket-key', randomBytes(16).toString('base64'))
      }
      this.upgradeProtocol = protocol
    }
    this.method = method
    // A CONNECT has no :path; route it by authority like any other request.
    this.url = url === '' ? '/' : url
    this.rawHeaders = headers
  }

  /** True for an extended CONNECT (RFC 8441): the router tunnels it as HTTP/1.1's Upgrade. */
  get upgrade(): boolean {
    return this.upgradeProtocol !== undefined
  }

  get complete(): boolean {
    const stream = this.#stream
    return stream.endAfterHeaders || stream.readableEnded
  }

  /** Built on first use only, as node:http does: lowercase names, repeated values joined. */
  get headers(): IncomingHttpHeaders {
    if (this.#headers === undefined) {
      const out: Record<string, string | string[]> = {}
      const raw = this.rawHeaders
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]
        const value = raw[i + 1]
        const seen = out[name]
        if (seen === undefined) out[name] = name === 'set-cookie' ? [value] : value
        else if (Array.isArray(seen)) seen.push(value)
        else out[name] = `${seen}, ${value}`
      }
      this.#headers = out
    }
    return this.#headers
  }
}
