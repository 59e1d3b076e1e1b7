// A strict reader of the HTTP/1.1 responses a connection received, for the fuzz targets: it fails on anything that is not a sequence of whole responses.

/** One response read off the wire (interim 1xx responses are skipped, as a client does). */
export interface WireResponse {
  readonly status: number
  /** Header fields with lowercase names, in order. */
  readonly headers: readonly (readonly [string, string])[]
  readonly body: string
}

export interface ReadResult {
  readonly responses: WireResponse[]
  /** Why the bytes after the last whole response are not one (undefined when there are none). */
  readonly problem?: string
}

const statusLine = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n]*)?$/
const fieldLine = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/

/**
 * Reads responses from `wire` (latin1). `noBody(i)` says whether response i answers a HEAD request.
 * `closed`: the server closed, so a response framed by the close ends at the end of `wire`.
 */
export function readResponses(wire: string, noBody: (index: number) => boolean, closed: boolean): ReadResult {
  const responses: WireResponse[] = []
  let at = 0
  while (at < wire.length) {
    const headEnd = wire.indexOf('\r\n\r\n', at)
    if (headEnd === -1)
      return { responses, problem: `an incomplete head: ${JSON.stringify(wire.slice(at, at + 200))}` }
    const lines = wire.slice(at, headEnd).split('\r\n')
    const status = statusLine.exec(lines[0])
    if (status === null)
      return { responses, problem: `not a status line: ${JSON.stringify(lines[0].slice(0, 200))}` }
    const headers: [string, string][] = []
    for (const line of lines.slice(1)) {
      const field = fieldLine.exec(line)
      if (field === null || /[\0\r\n]/.test(field[2]))
        return { responses, problem: `a malformed field line: ${JSON.stringify(line.slice(0, 200))}` }
      headers.push([field[1].toLowerCase(), field[2]])
    }
    at = headEnd + 4
    const code = Number(status[1])
    if (code >= 100 && code < 200) continue
    const contentLength = headers.filter(([name]) => name === 'content-length').map(([, value]) => value)
    const chunked = headers.some(([name, value]) => name === 'transfer-encoding' && /chunked/i.test(value))
    if (contentLength.length > 0 && chunked)
      return { responses, problem: 'a response with both content-length and chunked' }
    if (new Set(contentLength).size > 1)
      return { responses, problem: `content-lengths ${contentLength.join(', ')}` }
    let body = ''
    if (noBody(responses.length) || code === 204 || code === 304) {
      // A HEAD the codec could not parse gets its error reply with a body (the codec never saw the
      // method): `connection: close` and the reason phrase as the body, nothing else after it.
      const reason = lines[0].slice(13)
      const closing = headers.some(([name, value]) => name === 'connection' && value === 'close')
      if (closing && contentLength[0] === String(reason.length) && wire.slice(at) === reason) at = wire.length
    } else if (chunked) {
      for (;;) {
        const sizeEnd = wire.indexOf('\r\n', at)
        if (sizeEnd === -1) return { responses, problem: 'an incomplete chunked body' }
        const size = Number.parseInt(wire.slice(at, sizeEnd).split(';')[0], 16)
        if (!Number.isFinite(size)) return { responses, problem: 'a malformed chunk size' }
        at = sizeEnd + 2
        if (size === 0) {
          const trailersEnd = wire.indexOf('\r\n', at)
          if (trailersEnd === -1) return { responses, problem: 'an incomplete chunked body end' }
          // Trailer fields end with an empty line.
          const end = wire.indexOf('\r\n\r\n', at - 2)
          at = end === -1 ? trailersEnd + 2 : end + 4
          break
        }
        if (wire.length < at + size + 2) return { responses, problem: 'an incomplete chunk' }
        body += wire.slice(at, at + size)
        at += size + 2
      }
    } else if (contentLength.length > 0) {
      const length = Number(contentLength[0])
      if (!Number.isSafeInteger(length) || length < 0)
        return { responses, problem: `content-length ${contentLength[0]}` }
      if (wire.length < at + length) return { responses, problem: 'a body shorter than its content-length' }
      body = wire.slice(at, at + length)
      at += length
    } else {
      if (!closed) return { responses, problem: 'a body framed by the close on a connection still open' }
      body = wire.slice(at)
      at = wire.length
    }
    responses.push({ status: code, headers, body })
  }
  return { responses }
}

/** The value of the first field `name` (lowercase) of a response. */
export function fieldOf(response: WireResponse, name: string): string | undefined {
  return response.headers.find(([field]) => field === name)?.[1]
}
