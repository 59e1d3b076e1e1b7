// Reads a TLS ClientHello from the first bytes of a connection: server name (SNI) and ALPN protocols, as Envoy's tls_inspector.

/** What a ClientHello tells before any TLS is terminated. */
export interface ClientHello {
  /** The server_name extension's host name, lowercase; undefined when the client sent none. */
  readonly sni: string | undefined
  /** The application_layer_protocol_negotiation list (e.g. `h2`, `http/1.1`), in the client's order. */
  readonly alpn: readonly string[]
}

/** `incomplete`: more bytes are needed; `invalid`: these bytes are not a TLS ClientHello. */
export type ClientHelloResult = ClientHello | 'incomplete' | 'invalid'

/** The most a ClientHello may take before the connection is treated as not TLS (Envoy's 64 KiB). */
export const maxClientHelloBytes = 64 * 1024

const recordHeaderLength = 5
const contentTypeHandshake = 0x16
const handshakeClientHello = 0x01
const extensionServerName = 0x0000
const extensionAlpn = 0x0010

/** Whether the bytes so far may start a TLS handshake record (0x16, version 3.x); undefined: too few bytes. */
export function looksLikeTls(data: Buffer): boolean | undefined {
  if (data.length === 0) return undefined
  if (data[0] !== contentTypeHandshake) return false
  if (data.length < 3) return data.length < 2 || data[1] === 0x03
  return data[1] === 0x03 && data[2] <= 0x04
}

/**
 * Parses the ClientHello at the start of `data`. The handshake message may span several records;
 * their payloads are joined until it is complete.
 */
export function parseClientHello(data: Buffer): ClientHelloResult {
  const handshake: Buffer[] = []
  let handshakeBytes = 0
  let needed = -1
  let offset = 0
  while (needed < 0 || handshakeBytes < needed) {
    if (data.length < offset + recordHeaderLength) return tooLong(data)
    if (looksLikeTls(data.subarray(offset, offset + 3)) !== true) return 'invalid'
    const length = data.readUInt16BE(offset + 3)
    if (length === 0) return 'invalid'
    if (data.length < offset + recordHeaderLength + length) return tooLong(data)
    handshake.push(data.subarray(offset + recordHeaderLength, offset + recordHeaderLength + length))
    handshakeBytes += length
    offset += recordHeaderLength + length
    if (needed < 0 && handshakeBytes >= 4) {
      const first = handshake.length === 1 ? handshake[0] : Buffer.concat(handshake)
      if (first[0] !== handshakeClientHello) return 'invalid'
      needed = 4 + first.readUIntBE(1, 3)
      if (needed > maxClientHelloBytes) return 'invalid'
    }
  }
  const message = handshake.length === 1 ? handshake[0] : Buffer.concat(handshake)
  return readClientHello(message.subarray(4, needed)) ?? 'invalid'
}

function tooLong(data: Buffer): ClientHelloResult {
  return data.length >= maxClientHelloBytes + recordHeaderLength ? 'invalid' : 'incomplete'
}

/** A bounds-checked reader over the ClientHello body; every read returns undefined past the end. */
class Reader {
  readonly #data: Buffer
  #offset = 0

  constructor(data: Buffer) {
    this.#data = data
  }

  get remaining(): number {
    return this.#data.length - this.#offset
  }

  skip(n: number): boolean {
    if (n > this.remaining) return false
    this.#offset += n
    return true
  }

  uint(bytes: 1 | 2): number | undefined {
    if (bytes > this.remaining) return undefined
    const value = bytes === 1 ? this.#data[this.#offset] : this.#data.readUInt16BE(this.#offset)
    this.#offset += bytes
    return value
  }

  bytes(n: number): Buffer | undefined {
    if (n > this.remaining) return undefined
    const out = this.#data.subarray(this.#offset, this.#offset + n)
    this.#offset += n
    return out
  }

  /** A length-prefixed vector (`<1..2^8-1>` or `<1..2^16-1>` in the TLS spec). */
  vector(lengthBytes: 1 | 2): Buffer | undefined {
    const n = this.uint(lengthBytes)
    return n === undefined ? undefined : this.bytes(n)
  }
}

/** legacy_version, random, session id, cipher suites, compression methods, then the extensions. */
function readClientHello(body: Buffer): ClientHello | undefined {
  const r = new Reader(body)
  if (!r.skip(2 + 32)) return undefined
  if (r.vector(1) === undefined || r.vector(2) === undefined || r.vector(1) === undefined) return undefined
  let sni: string | undefined
  let alpn: string[] = []
  if (r.remaining === 0) return { sni, alpn }
  const extensions = r.vector(2)
  if (extensions === undefined) return undefined
  const e = new Reader(extensions)
  while (e.remaining > 0) {
    const type = e.uint(2)
    const data = e.vector(2)
    if (type === undefined || data === undefined) return undefined
    if (type === extensionServerName) sni = readServerName(data)
    else if (type === extensionAlpn) alpn = readAlpn(data)
  }
  return { sni, alpn }
}

/** The first host_name (type 0) entry of a server_name list. */
function readServerName(data: Buffer): string | undefined {
  const list = new Reader(data).vector(2)
  if (list === undefined) return undefined
  const r = new Reader(list)
  while (r.remaining > 0) {
    const type = r.uint(1)
    const name = r.vector(2)
    if (type === undefined || name === undefined) return undefined
    if (type === 0) return name.toString('latin1').toLowerCase()
  }
  return undefined
}

function readAlpn(data: Buffer): string[] {
  const list = new Reader(data).vector(2)
  if (list === undefined) return []
  const r = new Reader(list)
  const out: string[] = []
  while (r.remaining > 0) {
    const name = r.vector(1)
    if (name === undefined) break
    out.push(name.toString('latin1'))
  }
  return out
}
