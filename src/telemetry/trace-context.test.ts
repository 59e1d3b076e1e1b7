// Trace context extraction, sampling and injection: W3C traceparent (w3.org/TR/trace-context) and B3 (openzipkin/b3-propagation).

import { describe, expect, it } from 'vitest'
import type { TracingPolicy } from './telemetry-policy.ts'
import { decideTrace, writeTraceHeaders } from './trace-context.ts'

const policy = (
  samplingPercent: number,
  propagation: TracingPolicy['propagation'] = ['W3C', 'B3'],
): TracingPolicy => ({
  otlpEndpoint: 'http://127.0.0.1:1/v1/traces',
  samplingPercent,
  propagation,
  customTags: [],
  disableSpanReporting: false,
})

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
const parent = '00f067aa0ba902b7'

describe('decideTrace', () => {
  it('honours a sampled W3C traceparent: same trace, the downstream span as parent, a new span id', () => {
    const trace = decideTrace(policy(0), ['Traceparent', `00-${traceId}-${parent}-01`])
    expect(trace).toMatchObject({ traceId, parentSpanId: parent })
    expect(trace?.spanId).toMatch(/^[0-9a-f]{16}$/)
    expect(trace?.spanId).not.toBe(parent)
  })

  it('honours an unsampled W3C traceparent even at 100 %', () => {
    expect(decideTrace(policy(100), ['traceparent', `00-${traceId}-${parent}-00`])).toBeUndefined()
  })

  it('ignores an invalid traceparent (upper case, zero ids, wrong length) and samples by percentage', () => {
    for (const bad of [
      `00-${traceId.toUpperCase()}-${parent}-01`,
      `00-${'0'.repeat(32)}-${parent}-01`,
      `00-${traceId}-${parent}-1`,
    ]) {
      expect(decideTrace(policy(0), ['traceparent', bad])).toBeUndefined()
      const fresh = decideTrace(policy(100), ['traceparent', bad])
      expect(fresh?.traceId).not.toBe(traceId)
      expect(fresh?.parentSpanId).toBe('')
    }
  })

  it('starts a root trace at the sampling percentage when the downstream decided nothing', () => {
    expect(decideTrace(policy(0), [])).toBeUndefined()
    const trace = decideTrace(policy(100), ['host', 'a'])
    expect(trace?.traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(trace?.parentSpanId).toBe('')
    let sampled = 0
    for (let i = 0; i < 4000; i++) if (decideTrace(policy(25), []) !== undefined) sampled++
    expect(sampled).toBeGreaterThan(800)
    expect(sampled).toBeLessThan(1200)
  })

  it('matches header names in any case, and only the trace headers among names of their lengths', () => {
    const lookalikes = ['Connection', 'keep-alive', 'X-Request-Id', 'abc', 'Content-Type', 'text/plain']
    const more = ['traceparenu', `00-${traceId}-${parent}-01`, 'x-b3-flagz', '1', 'y-b3-sampled', '1']
    expect(decideTrace(policy(0), [...lookalikes, ...more])).toBeUndefined()
    expect(decideTrace(policy(0), ['TRACEPARENT', `00-${traceId}-${parent}-01`])?.traceId).toBe(traceId)
    const b3 = ['X-B3-TRACEID', traceId, 'x-B3-spanID', parent, 'X-b3-Flags', '1']
    expect(decideTrace(policy(0), [...lookalikes, ...b3])).toMatchObject({ traceId, debug: true })
  })

  it('reads B3 multi headers: a 64-bit trace id padded, x-b3-sampled 0 honoured, x-b3-flags 1 is debug', () => {
    const trace = decideTrace(policy(0), [
      'X-B3-TraceId',
      'A3CE929D0E0E4736',
      'X-B3-SpanId',
      parent,
      'X-B3-Sampled',
      '1',
    ])
    expect(trace).toMatchObject({
      traceId: `${'0'.repeat(16)}a3ce929d0e0e4736`,
      parentSpanId: parent,
      b3Single: false,
    })
    expect(
      decideTrace(policy(100), ['x-b3-traceid', traceId, 'x-b3-spanid', parent, 'x-b3-sampled', '0']),
    ).toBeUndefined()
    expect(
      decideTrace(policy(0), ['x-b3-traceid', traceId, 'x-b3-spanid', parent, 'x-b3-flags', '1'])?.debug,
    ).toBe(true)
  })

  it('reads the single b3 header, with or without ids', () => {
    expect(decideTrace(policy(0), ['b3', `${traceId}-${parent}-1`])).toMatchObject({
      traceId,
      parentSpanId: parent,
      b3Single: true,
    })
    expect(decideTrace(policy(100), ['b3', `${traceId}-${parent}-0`])).toBeUndefined()
    expect(decideTrace(policy(100), ['b3', '0'])).toBeUndefined()
    expect(decideTrace(policy(0), ['b3', 'd'])?.debug).toBe(true)
    expect(decideTrace(policy(0), ['b3', `${traceId}-${parent}`])).toBeUndefined()
  })

  it('remembers a single b3 header beside a traceparent (read first), so the upstream gets the single form', () => {
    const both = ['traceparent', `00-${traceId}-${parent}-01`, 'b3', `${traceId}-${parent}-1`]
    expect(decideTrace(policy(0), both)).toMatchObject({ traceId, parentSpanId: parent, b3Single: true })
  })

  it('reads only the formats the policy propagates', () => {
    expect(decideTrace(policy(0, ['B3']), ['traceparent', `00-${traceId}-${parent}-01`])).toBeUndefined()
    expect(decideTrace(policy(0, ['W3C']), ['b3', `${traceId}-${parent}-1`])).toBeUndefined()
  })
})

describe('writeTraceHeaders', () => {
  it('replaces the downstream context with this span in W3C and B3 multi headers, keeping tracestate', () => {
    const trace = decideTrace(policy(0), ['traceparent', `00-${traceId}-${parent}-01`])
    if (trace === undefined) throw new Error('not sampled')
    const headers = [
      'host',
      'a',
      'traceparent',
      `00-${traceId}-${parent}-01`,
      'tracestate',
      'k=v',
      'x-b3-sampled',
      '0',
    ]
    writeTraceHeaders(headers, trace)
    expect(headers).toEqual([
      'host',
      'a',
      'tracestate',
      'k=v',
      'traceparent',
      `00-${traceId}-${trace.spanId}-01`,
      'x-b3-traceid',
      traceId,
      'x-b3-spanid',
      trace.spanId,
      'x-b3-parentspanid',
      parent,
      'x-b3-sampled',
      '1',
    ])
  })

  it('answers a single b3 header with a single b3 header, and leaves formats not propagated alone', () => {
    const trace = decideTrace(policy(0, ['B3']), ['b3', `${traceId}-${parent}-d`])
    if (trace === undefined) throw new Error('not sampled')
    const headers = ['b3', `${traceId}-${parent}-d`, 'traceparent', 'untouched']
    writeTraceHeaders(headers, trace)
    expect(headers).toEqual(['traceparent', 'untouched', 'b3', `${traceId}-${trace.spanId}-d-${parent}`])
  })
})
