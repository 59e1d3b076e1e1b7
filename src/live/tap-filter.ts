// Which finished requests a tap shows: a filter parsed once from admin's query (or a worker's copy of it) and tested on a record's fields without allocating.

import type { RequestRecord, TrafficDirection } from '../telemetry/request-record.ts'

/** A tap's filter as the admin query and the workers' messages carry it: plain strings, each optional. */
export interface TapFilterSpec {
  /** `host` (any port) or `host:port`, matched exactly and case-insensitively. */
  readonly authority?: string
  /** A prefix of the path (without the query). */
  readonly path?: string
  /** An exact method (upper-cased). */
  readonly method?: string
  /** A class (`2xx`, `4xx`, …) or an exact status code. */
  readonly status?: string
  readonly direction?: string
}

/** A filter that cannot be used, with the reason admin answers 400 with. */
export class TapFilterError extends Error {
  override readonly name = 'TapFilterError'
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const PORT_SUFFIX = /:(\d{1,5})$/
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[^\s/?#@[\]:]+)(:\d{1,5})?$/

/**
 * A compiled filter. The tests run cheapest first (direction, status, method, then the strings);
 * `matches` reads only the record's fields and allocates nothing, so a tap that matches nothing costs
 * a few comparisons per request.
 */
export class TapFilter {
  readonly spec: TapFilterSpec
  readonly #direction: TrafficDirection | undefined
  /** The status range [low, high], inclusive; [0, 999] when unfiltered. */
  readonly #statusLow: number
  readonly #statusHigh: number
  readonly #method: string | undefined
  /** The authority's host (lower case), and its port (with the colon) or '' for any port. */
  readonly #host: string | undefined
  readonly #port: string
  readonly #pathPrefix: string | undefined

  /** Throws a TapFilterError naming the field that is wrong. */
  constructor(spec: TapFilterSpec) {
    this.spec = spec
    const { authority, path, method, status, direction } = spec
    if (direction !== undefined && direction !== 'inbound' && direction !== 'outbound')
      throw new TapFilterError(`direction must be inbound or outbound, not ${JSON.stringify(direction)}`)
    this.#direction = direction
    ;[this.#statusLow, this.#statusHigh] = statusRange(status)
    if (method !== undefined && !TOKEN.test(method))
      throw new TapFilterError(`method ${JSON.stringify(method)} is not an HTTP method`)
    this.#method = method?.toUpperCase()
    if (authority !== undefined) {
      if (!AUTHORITY.test(authority))
        throw new TapFilterError(`authority ${JSON.stringify(authority)} is not host or host:port`)
      const port = PORT_SUFFIX.exec(authority)
      const lower = authority.toLowerCase()
      this.#host = port === null ? lower : lower.slice(0, port.index)
      this.#port = port === null ? '' : port[0]
    } else {
      this.#host = undefined
      this.#port = ''
    }
    if (path !== undefined && !path.startsWith('/'))
      throw new TapFilterError(`path ${JSON.stringify(path)} must start with /`)
    this.#pathPrefix = path
  }

  matches(record: RequestRecord): boolean {
    if (this.#direction !== undefined && record.direction !== this.#direction) return false
    const status = record.responseStatus
    if (status < this.#statusLow || status > this.#statusHigh) return false
    if (this.#method !== undefined && record.method !== this.#method) return false
    if (this.#host !== undefined && !this.#authorityMatches(record.authority)) return false
    if (this.#pathPrefix !== undefined && !record.path.startsWith(this.#pathPrefix)) return false
    return true
  }

  /** Exact and case-insensitive; a filter without a port takes the host with any port or none. */
  #authorityMatches(authority: string): boolean {
    const host = this.#host as string
    if (this.#port !== '') {
      const port = this.#port
      return (
        authority.length === host.length + port.length &&
        authority.endsWith(port) &&
        sameIgnoringCase(authority, host, host.length)
      )
    }
    if (authority.length < host.length || !sameIgnoringCase(authority, host, host.length)) return false
    if (authority.length === host.length) return true
    // `host:port`: a colon, then digits to the end.
    if (authority.charCodeAt(host.length) !== 58 || authority.length === host.length + 1) return false
    for (let i = host.length + 1; i < authority.length; i++) {
      const c = authority.charCodeAt(i)
      if (c < 48 || c > 57) return false
    }
    return true
  }
}

/** Whether the first `length` characters of `text` equal `lower` (already lower case), ASCII case aside. */
function sameIgnoringCase(text: string, lower: string, length: number): boolean {
  for (let i = 0; i < length; i++) {
    let c = text.charCodeAt(i)
    if (c >= 65 && c <= 90) c += 32
    if (c !== lower.charCodeAt(i)) return false
  }
  return true
}

/** `2xx` → [200, 299]; `404` → [404, 404]; none → every status (0, no response, included). */
function statusRange(status: string | undefined): [number, number] {
  if (status === undefined) return [0, 999]
  const cls = /^([1-5])xx$/i.exec(status)
  if (cls !== null) {
    const hundreds = Number(cls[1]) * 100
    return [hundreds, hundreds + 99]
  }
  if (/^[1-5]\d\d$/.test(status)) return [Number(status), Number(status)]
  throw new TapFilterError(
    `status must be a class (2xx, 4xx, 5xx…) or a code (100-599), not ${JSON.stringify(status)}`,
  )
}
