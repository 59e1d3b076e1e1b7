// A request's trace context: extracted from W3C traceparent or B3 (multi or single header), sampled or not, and written to the upstream request.

import { randomFillSync } from 'node:crypto'
import type { TracingPolicy } from './telemetry-policy.ts'

/**
 * The span this proxy records for one sampled request (Envoy's HCM span: SERVER inbound, CLIENT
 * outbound), and what the upstream is told of it. A request that is not sampled has none.
 */
export class SampledTrace {
  /** 32 lowercase hex digits (a 64-bit B3 trace id is left-padded with zeros). */
  readonly traceId: string
  /** This proxy's span: 16 lowercase hex digits. */
  readonly spanId: string
  /** The downstream's span (the parent), or '' when this span starts the trace. */
  readonly parentSpanId: string
  /** B3's debug flag (`x-b3-flags: 1`, or `d` in the single header): passed on upstream. */
  readonly debug: boolean
  /** The downstream sent the single `b3` header: the upstream gets the single header too. */
  readonly b3Single: boolean
  readonly propagation: TracingPolicy['propagation']

  constructor(
    traceId: string,
    parentSpanId: string,
    debug: boolean,
    b3Single: boolean,
    propagation: TracingPolicy['propagation'],
  ) {
    this.traceId = traceId
    this.spanId = randomHex(8)
    this.parentSpanId = parentSpanId
    this.debug = debug
    this.b3Single = b3Single
    this.propagation = propagation
  }
}

/** The headers a format owns: the upstream gets this proxy's values instead of the downstream's. */
const w3cHeaders = new Set(['traceparent'])
const b3Headers = new Set([
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
])

/**
 * Decides whether this request is traced, as Envoy's HCM does: a sampling decision the downstream
 * made (W3C `traceparent` flags, B3 `x-b3-sampled`/`x-b3-flags` or the single header's sampling field)
 * is honoured; without one, `samplingPercent` of requests are sampled (Istio's
 * randomSamplingPercentage). W3C is read first, then B3, each only when `propagation` names it.
 * Returns undefined when the request is not sampled, having allocated nothing: the downstream's trace
 * headers then pass upstream unchanged. Reads `rawHeaders` (name, value, …) in one pass.
 */
export function decideTrace(policy: TracingPolicy, rawHeaders: readonly string[]): SampledTrace | undefined {
  let traceparent: string | undefined
  let b3: string | undefined
  let b3TraceId: string | undefined
  let b3SpanId: string | undefined
  let b3Sampled: string | undefined
  let b3Flags: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]
    const length = name.length
    if (length === 11) {
      if (isNamed(name, 'traceparent')) traceparent = rawHeaders[i + 1]
      else if (isNamed(name, 'x-b3-spanid')) b3SpanId = rawHeaders[i + 1]
    } else if (length === 12) {
      if (isNamed(name, 'x-b3-traceid')) b3TraceId = rawHeaders[i + 1]
      else if (isNamed(name, 'x-b3-sampled')) b3Sampled = rawHeaders[i + 1]
    } else if (length === 10) {
      if (isNamed(name, 'x-b3-flags')) b3Flags = rawHeaders[i + 1]
    } else if (length === 2 && (name === 'b3' || name === 'B3')) b3 = rawHeaders[i + 1]
  }
  // The formats are looked up only for a request that carries their headers (most carry none).
  const propagation = policy.propagation
  const useB3 =
    (b3 !== undefined || b3TraceId !== undefined || b3Sampled !== undefined || b3Flags !== undefined) &&
    propagation.includes('B3')

  // W3C trace context (https://www.w3.org/TR/trace-context/#traceparent-header): 00-<trace>-<span>-<flags>.
  if (traceparent !== undefined && propagation.includes('W3C') && isTraceparent(traceparent)) {
    // Bit 0 of the flags (their last hex digit) is `sampled`.
    if ((hexValue(traceparent.charCodeAt(54)) & 1) === 0) return undefined
    return new SampledTrace(
      traceparent.slice(3, 35),
      traceparent.slice(36, 52),
      false,
      b3 !== undefined,
      propagation,
    )
  }
  if (useB3 && b3 !== undefined) return decideB3Single(policy, b3)
  if (useB3 && (b3TraceId !== undefined || b3Sampled !== undefined || b3Flags !== undefined)) {
    // https://github.com/openzipkin/b3-propagation#multiple-headers: the debug flag implies sampled.
    const debug = b3Flags === '1'
    const sampled = debug
      ? true
      : b3Sampled === undefined
        ? undefined
        : b3Sampled === '1' || b3Sampled === 'true'
    if (sampled === false || (sampled === undefined && !randomlySampled(policy))) return undefined
    if (b3TraceId !== undefined && b3SpanId !== undefined && isHexId(b3TraceId) && isHexId(b3SpanId, 16))
      return new SampledTrace(
        b3TraceId.toLowerCase().padStart(32, '0'),
        b3SpanId.toLowerCase(),
        debug,
        false,
        propagation,
      )
    return new SampledTrace(randomHex(16), '', debug, b3 !== undefined, propagation)
  }
  if (!randomlySampled(policy)) return undefined
  return new SampledTrace(randomHex(16), '', false, b3 !== undefined, propagation)
}

/**
 * The single `b3` header (https://github.com/openzipkin/b3-propagation#single-header):
 * `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`, or only a sampling state (`0`, `1`, `d`).
 */
function decideB3Single(policy: TracingPolicy, b3: string): SampledTrace | undefined {
  const first = b3.indexOf('-')
  if (first === -1) {
    if (b3 === '0') return undefined
    if (b3 !== '1' && b3 !== 'd' && !randomlySampled(policy)) return undefined
    return new SampledTrace(randomHex(16), '', b3 === 'd', true, policy.propagation)
  }
  const second = b3.indexOf('-', first + 1)
  const stateStart = second === -1 ? -1 : second + 1
  const stateEnd =
    stateStart === -1 ? -1 : b3.indexOf('-', stateStart) === -1 ? b3.length : b3.indexOf('-', stateStart)
  const state = stateStart === -1 ? -1 : stateEnd - stateStart === 1 ? b3.charCodeAt(stateStart) : 0
  // 0x30 '0', 0x31 '1', 0x64 'd'
  if (state === 0x30) return undefined
  if (state !== 0x31 && state !== 0x64 && !randomlySampled(policy)) return undefined
  const traceId = b3.slice(0, first)
  const spanId = b3.slice(first + 1, second === -1 ? b3.length : second)
  if (!isHexId(traceId) || !isHexId(spanId, 16))
    return new SampledTrace(randomHex(16), '', state === 0x64, true, policy.propagation)
  return new SampledTrace(
    traceId.toLowerCase().padStart(32, '0'),
    spanId.toLowerCase(),
    state === 0x64,
    true,
    policy.propagation,
  )
}

/**
 * `name.toLowerCase() === lower` for a header name of `lower`'s length, without making a lowercase copy
 * (`lower` is lowercase ASCII; header names are ASCII tokens, which node's HTTP/1.1 and HTTP/2 parsers
 * enforce, so only A–Z differ from their lowercase).
 */
function isNamed(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i)
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== lower.charCodeAt(i)) return false
  }
  return true
}

function randomlySampled(policy: TracingPolicy): boolean {
  const percent = policy.samplingPercent
  return percent >= 100 || (percent > 0 && Math.random() * 100 < percent)
}

/** `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex, ids not all zero (version 00; later versions may append fields). */
function isTraceparent(value: string): boolean {
  if (value.length < 55 || value.charCodeAt(2) !== 0x2d || value.charCodeAt(35) !== 0x2d) return false
  if (value.charCodeAt(52) !== 0x2d || (value.length > 55 && value.charCodeAt(55) !== 0x2d)) return false
  if (value.startsWith('ff') || !isLowerHex(value, 0, 2) || !isLowerHex(value, 53, 55)) return false
  return (
    isLowerHex(value, 3, 35) && isLowerHex(value, 36, 52) && !isZeros(value, 3, 35) && !isZeros(value, 36, 52)
  )
}

function isLowerHex(value: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = value.charCodeAt(i)
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false
  }
  return true
}

function isZeros(value: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (value.charCodeAt(i) !== 0x30) return false
  return true
}

/** A B3 id: 16 or 32 hex digits (either case), not all zero. */
function isHexId(value: string, only?: number): boolean {
  const length = value.length
  if (only === undefined ? length !== 16 && length !== 32 : length !== only) return false
  return isLowerHex(value.toLowerCase(), 0, length) && !isZeros(value, 0, length)
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : c - 0x57
}

/** Random bytes for ids, refilled when used up. */
const random = Buffer.alloc(8 * 128)
let nextByte = random.length

/** `bytes` random bytes as lowercase hex (never all zero: the W3C and B3 invalid id). */
function randomHex(bytes: number): string {
  if (nextByte + bytes > random.length) {
    randomFillSync(random)
    nextByte = 0
  }
  const at = nextByte
  nextByte += bytes
  if (random[at] === 0) random[at] = 1
  return random.toString('hex', at, at + bytes)
}

/**
 * Gives the upstream request this proxy's span as its parent, in each format of the trace's
 * `propagation`: the downstream's headers of that format are replaced, `tracestate` and the formats
 * not configured pass unchanged. B3 goes as the single `b3` header when the downstream sent it so,
 * else as the multi headers. `headers` is a flat name, value list with lowercase names.
 */
export function writeTraceHeaders(headers: string[], trace: SampledTrace): void {
  const w3c = trace.propagation.includes('W3C')
  const b3 = trace.propagation.includes('B3')
  let kept = 0
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]
    if ((w3c && w3cHeaders.has(name)) || (b3 && b3Headers.has(name))) continue
    headers[kept++] = name
    headers[kept++] = headers[i + 1]
  }
  headers.length = kept
  const { traceId, spanId, parentSpanId } = trace
  if (w3c) headers.push('traceparent', `00-${traceId}-${spanId}-01`)
  if (!b3) return
  if (trace.b3Single) {
    const state = trace.debug ? 'd' : '1'
    headers.push('b3', `${traceId}-${spanId}-${state}${parentSpanId === '' ? '' : `-${parentSpanId}`}`)
    return
  }
  headers.push('x-b3-traceid', traceId, 'x-b3-spanid', spanId)
  if (parentSpanId !== '') headers.push('x-b3-parentspanid', parentSpanId)
  if (trace.debug) headers.push('x-b3-flags', '1')
  else headers.push('x-b3-sampled', '1')
}
