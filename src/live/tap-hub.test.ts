// TapHub: it observes only while a tap is attached, builds an event only for a request a tap matches, and detaches a tap after its max.

import { describe, expect, it } from 'vitest'
import type { RequestRecord } from '../telemetry/request-record.ts'
import { TrafficObservers } from '../telemetry/traffic-observer.ts'
import type { TapEvent } from './live-api.ts'
import { TapFilter } from './tap-filter.ts'
import { TapHub } from './tap-hub.ts'

const filterFields = new Set(['direction', 'method', 'authority', 'path', 'responseStatus'])

/** A finished request; with `strict`, reading any field a filter does not read throws (the event was built). */
function record(path: string, strict = false): RequestRecord {
  const fields: Record<string, unknown> = {
    direction: 'outbound',
    method: 'GET',
    authority: 'app',
    path,
    url: path,
    responseStatus: 200,
    startTime: 1,
    endTime: 3,
    responseFlags: [],
    protocol: 'HTTP/1.1',
    requestBodyBytes: 0,
    responseBodyBytes: 2,
    clusterName: 'c',
    routeName: '',
    requestId: 'id',
    upstreamHostPort: '127.0.0.1:1',
    peer: undefined,
    grpcStatus: undefined,
  }
  return new Proxy(fields, {
    get(target, name) {
      if (strict && !filterFields.has(String(name))) throw new Error(`read ${String(name)}`)
      return target[name as string]
    },
  }) as unknown as RequestRecord
}

describe('TapHub', () => {
  it('joins the observers at the first attach and leaves them at the last detach', () => {
    const observers = new TrafficObservers()
    const hub = new TapHub(observers, 0)
    expect(observers.active).toBe(false)
    const a = hub.attach(new TapFilter({}), Number.POSITIVE_INFINITY, () => {})
    const b = hub.attach(new TapFilter({}), Number.POSITIVE_INFINITY, () => {})
    expect(observers.active).toBe(true)
    a.detach()
    a.detach()
    expect(observers.active).toBe(true)
    b.detach()
    expect(observers.active).toBe(false)
    expect(hub.size).toBe(0)
  })

  it('builds the event only for a request some tap matches, once for all of them', () => {
    const observers = new TrafficObservers()
    const hub = new TapHub(observers, 3)
    const seen: TapEvent[][] = [[], [], []]
    hub.attach(new TapFilter({ path: '/a' }), Number.POSITIVE_INFINITY, (e) => seen[0]?.push(e))
    hub.attach(new TapFilter({ path: '/a' }), Number.POSITIVE_INFINITY, (e) => seen[1]?.push(e))
    hub.attach(new TapFilter({ path: '/b' }), Number.POSITIVE_INFINITY, (e) => seen[2]?.push(e))
    // A request no tap matches: only the filter's fields are read.
    hub.requestEnded(record('/c', true))
    hub.requestEnded(record('/a/1'))
    expect(seen[0]).toHaveLength(1)
    expect(seen[1]?.[0]).toBe(seen[0]?.[0])
    expect(seen[2]).toEqual([])
    expect(seen[0]?.[0]).toMatchObject({ path: '/a/1', durationMs: 2, worker: 3, responseFlags: '-' })
  })

  it('detaches a tap once it delivered max events', () => {
    const observers = new TrafficObservers()
    const hub = new TapHub(observers, 0)
    const paths: string[] = []
    const tap = hub.attach(new TapFilter({}), 2, (e) => paths.push(e.path))
    for (const path of ['/1', '/2', '/3']) observers.requestEnded(record(path))
    expect(paths).toEqual(['/1', '/2'])
    expect(tap.attached).toBe(false)
    expect(observers.active).toBe(false)
  })
})
