// fast-check arbitraries of hostile HTTP/1.1 request heads and bodies (RFC 9112 framing edge cases and smuggling attempts), as raw bytes.

import fc from 'fast-check'

/** How a generated request frames its body (RFC 9112 §6). */
type Framing =
  | 'none'
  | 'content-length'
  | 'chunked'
  | 'both' // Content-Length and Transfer-Encoding: chunked (§6.1: a smuggling vector)
  | 'duplicate-length' // two Content-Length fields with different values (§6.3 item 5)
  | 'same-length-twice' // two equal Content-Length fields (may be accepted)
  | 'bad-length' // a Content-Length that is not a decimal number
  | 'bad-coding' // a Transfer-Encoding whose final coding is not chunked (§6.3 item 4: 400)
  | 'bad-chunk' // chunked with a malformed or overflowing chunk size

/** A request, before the run's marker is known. */
export interface RequestShape {
  readonly method: string
  readonly target: string
  readonly version: string
  readonly lineEnd: string
  readonly host: 'one' | 'missing' | 'twice' | 'bad'
  readonly fields: readonly (readonly [string, string])[]
  readonly fieldProblem: 'none' | 'nul-in-value' | 'ctl-in-name' | 'space-before-colon' | 'obs-fold'
  readonly framing: Framing
  readonly codingValue: string
  readonly body: string
  readonly chunkExtension: string
  readonly badChunkSize: string
  /** Append a whole second request inside the body: it must never reach the app as a request. */
  readonly smuggle: boolean
}

/** A request as bytes, with what RFC 9112 requires of a server that receives it. */
export interface WireRequest {
  readonly bytes: string
  readonly head: boolean
  /**
   * `head`: the server must refuse the request from its head (400 class, nothing forwarded); `body`: it is
   * refused in its body (the head may already have reached the app, but never a complete request);
   * `none`: not certainly invalid.
   */
  readonly refusal: 'head' | 'body' | 'none'
}

const token = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-_.!#~0123456789'),
  minLength: 1,
  maxLength: 16,
})
const oddUnit = fc.constantFrom(
  'a',
  'Z',
  ' ',
  '\t',
  ',',
  ';',
  '"',
  '=',
  '\u0001',
  '\u007f',
  '\u0080',
  '\u00ff',
  ':',
  '%',
)
const value = fc.oneof(
  fc.string({ unit: oddUnit, maxLength: 30 }),
  fc.constantFrom(
    'close',
    'keep-alive',
    'upgrade',
    'chunked',
    '100-continue',
    'gzip',
    '',
    ' ',
    'x'.repeat(4000),
  ),
)

/** Header fields besides Host and the framing ones; the names that change the exchange are among them. */
const fields = fc.array(
  fc.oneof(
    fc.tuple(token, value),
    fc.tuple(
      fc.constantFrom(
        'Connection',
        'Upgrade',
        'Expect',
        'TE',
        'Keep-Alive',
        'Trailer',
        'X-Forwarded-For',
        'Proxy-Connection',
      ),
      fc.constantFrom(
        'close',
        'keep-alive',
        'upgrade',
        'websocket',
        '100-continue',
        'trailers',
        'x-y',
        'te, close',
      ),
    ),
  ),
  { maxLength: 8 },
)

const target = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '/',
      '/a/b',
      '/a/../b',
      '/%2e%2e/x',
      '/a/%2E%2E/%2e/',
      '//x',
      '/a?b=c&d',
      '/%zz',
      '/a#frag',
      '/%00',
      '/\u00e9',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '*',
      'http://app/x',
      'http://app:80/y?z',
      'app:80',
      'HTTP://APP/',
      'http://other/',
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 6000 }).map((n) => `/${'a/'.repeat(n)}`) },
  {
    weight: 1,
    arbitrary: fc
      .string({
        unit: fc.constantFrom('/', 'a', '.', '%', '2', 'e', '?', '#', ' ', '\u0000', '\t'),
        maxLength: 20,
      })
      .map((s) => `/${s}`),
  },
)

/** A request's parts; `fc.record` shrinks each field on its own, so a counterexample comes out minimal. */
export const requestShape: fc.Arbitrary<RequestShape> = fc.record({
  method: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
    { weight: 1, arbitrary: fc.constantFrom('get', 'G\u0000T', 'GE T', 'PRI', 'FOO', 'TRACE', '') },
  ),
  target,
  version: fc.oneof(
    { weight: 8, arbitrary: fc.constant('HTTP/1.1') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/1.1 ', 'HTTP/11', ''),
    },
  ),
  lineEnd: fc.oneof(
    { weight: 8, arbitrary: fc.constant('\r\n') },
    { weight: 1, arbitrary: fc.constantFrom('\n', '\r') },
  ),
  host: fc.oneof(
    { weight: 8, arbitrary: fc.constant('one' as const) },
    { weight: 1, arbitrary: fc.constantFrom('missing' as const, 'twice' as const, 'bad' as const) },
  ),
  fields,
  fieldProblem: fc.oneof(
    { weight: 6, arbitrary: fc.constant('none' as const) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'nul-in-value' as const,
        'ctl-in-name' as const,
        'space-before-colon' as const,
        'obs-fold' as const,
      ),
    },
  ),
  framing: fc.constantFrom<Framing>(
    'none',
    'content-length',
    'chunked',
    'both',
    'duplicate-length',
    'same-length-twice',
    'bad-length',
    'bad-coding',
    'bad-chunk',
  ),
  codingValue: fc.constantFrom(
    'chunked, identity',
    'xchunked',
    'identity',
    'gzip',
    'chunked, gzip',
    'chunked;q=1',
    'chunk',
  ),
  body: fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.integer({ min: 1, max: 64 }).map((kib) => 'b'.repeat(kib * 1024)),
  ),
  chunkExtension: fc.constantFrom('', ';a=b', ';a="b;c"', `;${'x'.repeat(20_000)}`),
  badChunkSize: fc.constantFrom('zz', '-1', 'ffffffffffffffffffff', '0x5', ' 5', '5 5', ''),
  smuggle: fc.boolean(),
})

/** The latin1 bytes of `shape`, with `marker` in an `x-fuzz-marker` field (first, so it survives). */
export function wireRequest(shape: RequestShape, marker: string, smuggledMarker: string): WireRequest {
  const eol = shape.lineEnd
  const lines = [`${shape.method} ${shape.target} ${shape.version}`.trimEnd(), `x-fuzz-marker: ${marker}`]
  if (shape.host === 'one' || shape.host === 'twice') lines.push('Host: app')
  if (shape.host === 'twice') lines.push('Host: other')
  if (shape.host === 'bad') lines.push('Host: ap p\u0001')
  // Field values with a line break make the head end where the generator cannot tell: no refusal is claimed.
  let chaotic =
    shape.lineEnd !== '\r\n' || shape.version !== 'HTTP/1.1' || shape.method !== shape.method.trim()
  for (const [name, v] of shape.fields) {
    if (/[\r\n]/.test(v)) chaotic = true
    lines.push(`${name}: ${v}`)
  }
  let refusal: WireRequest['refusal'] = 'none'
  const refuseHead = (): void => {
    refusal = 'head'
  }
  switch (shape.fieldProblem) {
    case 'nul-in-value':
      lines.push('x-nul: a\u0000b')
      refuseHead()
      break
    case 'ctl-in-name':
      lines.push('x-\u0001ctl: a')
      refuseHead()
      break
    case 'space-before-colon':
      // RFC 9112 §5.1: a server MUST reject whitespace between a field name and the colon with 400.
      lines.push('x-space : a')
      refuseHead()
      break
    case 'obs-fold':
      // §5.2: reject with 400, or replace each obs-fold with SP: either way never forwarded folded.
      lines.push(`x-fold: a${eol} folded`)
      break
  }
  if (shape.host === 'missing' || shape.host === 'twice' || shape.host === 'bad') refuseHead()

  const smuggled = shape.smuggle
    ? `GET /smuggled HTTP/1.1\r\nhost: app\r\nx-fuzz-marker: ${smuggledMarker}\r\ncontent-length: 0\r\n\r\n`
    : ''
  const payload = shape.body + smuggled
  const chunkedBody = (): string =>
    `${Buffer.byteLength(payload, 'latin1').toString(16)}${shape.chunkExtension}\r\n${payload}\r\n0\r\n\r\n`
  let body = ''
  switch (shape.framing) {
    case 'none':
      // A request without framing has no body (§6.3 item 7): a smuggled request after it is pipelined,
      // which is legitimate, so none is added.
      break
    case 'content-length':
      lines.push(`Content-Length: ${Buffer.byteLength(payload, 'latin1')}`)
      body = payload
      break
    case 'chunked':
      lines.push('Transfer-Encoding: chunked')
      body = chunkedBody()
      if (shape.chunkExtension.length > 16_384) refusal = 'body'
      break
    case 'both':
      // §6.1: "A server MAY reject a request that contains both Content-Length and Transfer-Encoding or
      // process such a request in accordance with the Transfer-Encoding alone"; here only CL counts the smuggled bytes.
      lines.push(`Content-Length: ${Buffer.byteLength(payload, 'latin1')}`, 'Transfer-Encoding: chunked')
      body = payload
      refuseHead()
      break
    case 'duplicate-length':
      lines.push(`Content-Length: ${Buffer.byteLength(payload, 'latin1')}`, 'Content-Length: 0')
      body = payload
      refuseHead()
      break
    case 'same-length-twice':
      lines.push(
        `Content-Length: ${Buffer.byteLength(payload, 'latin1')}`,
        `Content-Length: ${Buffer.byteLength(payload, 'latin1')}`,
      )
      body = payload
      break
    case 'bad-length':
      lines.push(`Content-Length: +${Buffer.byteLength(payload, 'latin1')}`)
      body = payload
      refuseHead()
      break
    case 'bad-coding':
      lines.push(`Transfer-Encoding: ${shape.codingValue}`)
      body = chunkedBody()
      // §6.3 item 4: chunked not final in a request: 400 and close. `chunked;q=1` has a parameter
      // chunked does not take (§7): refused too.
      refuseHead()
      break
    case 'bad-chunk':
      lines.push('Transfer-Encoding: chunked')
      body = `${shape.badChunkSize}\r\n${payload}\r\n0\r\n\r\n`
      if (refusal === 'none') refusal = 'body'
      break
  }
  if (chaotic) refusal = 'none'
  return { bytes: `${lines.join(eol)}${eol}${eol}${body}`, head: shape.method === 'HEAD', refusal }
}
