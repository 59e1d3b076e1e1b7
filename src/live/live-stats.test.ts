// Unit tests of LiveStats and the merge of workers' snapshots: rows per grouping, (none) and (other), TCP sampling, expiry, merged quantiles.

import { describe, expect, it } from 'vitest'
import type { RequestRecord } from '../telemetry/request-record.ts'
import type { TcpRecord } from '../telemetry/tcp-record.ts'
import { HISTORY_SECONDS } from './live-row.ts'
import { LiveStats, MAX_ROWS_PER_GROUPING, NO_NAME, OTHER_ROWS } from './live-stats.ts'
import { historyReport, statReport } from './stat-report.ts'

const CLUSTER = 'outbound|80||app.default.svc.cluster.local'

/** The fields LiveStats reads of a finished request. */
function request(fields: Partial<RequestRecord> & { latencyMs?: number }): RequestRecord {
  const latency = fields.latencyMs ?? 10
  return {
    direction: 'outbound',
    listenerName: 'outbound|8080||',
    clusterName: CLUSTER,
    routeStatName: 'default/app/0',
    responseStatus: 200,
    grpcStatus: undefined,
    startTime: 1000,
    endTime: 1000 + latency,
    ...fields,
  } as RequestRecord
}

function tcp(fields: Partial<TcpRecord> & { bytesReceived: number; bytesSent: number }): TcpRecord {
  return {
    direction: 'outbound',
    listenerName: 'outbound|9000||',
    clusterName: 'outbound|9000||db.example',
    destinationService: 'db.example',
    opened: true,
    ...fields,
  } as TcpRecord
}

function clock(start = 1_700_000_000_000) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

describe('LiveStats', () => {
  it('counts each request once per grouping, under (none) where a name is missing', () => {
    const live = new LiveStats({ autoTick: false })
    live.requestEnded(request({}))
    live.requestEnded(request({ responseStatus: 503 }))
    live.requestEnded(request({ clusterName: '', routeStatName: '', responseStatus: 404 }))
    const names = (by: 'service' | 'route' | 'cluster' | 'listener') =>
      Object.fromEntries(live.snapshot(by, 10).rows.map((r) => [r.name, [r.requests, r.successes]]))
    expect(names('service')).toEqual({ 'app.default.svc.cluster.local': [2, 1], [NO_NAME]: [1, 1] })
    expect(names('route')).toEqual({ 'default/app/0': [2, 1], [NO_NAME]: [1, 1] })
    expect(names('cluster')).toEqual({ [CLUSTER]: [2, 1], [NO_NAME]: [1, 1] })
    expect(names('listener')).toEqual({ 'outbound|8080||': [3, 2] })
    live.close()
  })

  it('folds the rows past the cap into (other)', () => {
    const live = new LiveStats({ autoTick: false })
    for (let i = 0; i < MAX_ROWS_PER_GROUPING + 7; i++)
      live.requestEnded(request({ routeStatName: `ns/vs/${i}` }))
    const rows = live.snapshot('route', 10).rows
    expect(rows).toHaveLength(MAX_ROWS_PER_GROUPING + 1)
    expect(rows.find((r) => r.name === OTHER_ROWS)?.requests).toBe(7)
  })

  it('keeps directions apart, and names the inbound service after the workload', () => {
    const live = new LiveStats({ autoTick: false, inboundService: 'reviews.default' })
    live.requestEnded(request({ direction: 'inbound', clusterName: 'inbound|8080||' }))
    live.requestEnded(request({}))
    const rows = live.snapshot('listener', 10).rows
    expect(rows.map((r) => [r.direction, r.requests])).toEqual([
      ['inbound', 1],
      ['outbound', 1],
    ])
    expect(live.snapshot('service', 10).rows.map((r) => [r.direction, r.name])).toEqual([
      ['inbound', 'reviews.default'],
      ['outbound', 'app.default.svc.cluster.local'],
    ])
  })

  it('samples open TCP connections each second and adds the last bytes at the end', () => {
    const c = clock()
    const live = new LiveStats({ clock: c.now, autoTick: false })
    const record = { ...tcp({ bytesReceived: 0, bytesSent: 0 }) }
    live.tcpOpened(record)
    Object.assign(record, { bytesReceived: 300, bytesSent: 100 })
    c.advance(1000)
    live.tick()
    let db = live.snapshot('service', 10).rows[0]
    expect(db).toMatchObject({
      name: 'db.example',
      tcpOpenConnections: 1,
      tcpBytesReceived: 300,
      tcpBytesSent: 100,
    })
    Object.assign(record, { bytesReceived: 500, bytesSent: 150 })
    live.tcpEnded(record)
    db = live.snapshot('service', 10).rows[0]
    expect(db).toMatchObject({ tcpOpenConnections: 0, tcpBytesReceived: 500, tcpBytesSent: 150 })
    // Only the first second falls in a 1 s window once another second has closed.
    c.advance(1000)
    live.tick()
    expect(live.snapshot('cluster', 1).rows).toEqual([])
  })

  it('drops a row idle for the whole history', () => {
    const c = clock()
    const live = new LiveStats({ clock: c.now, autoTick: false })
    live.requestEnded(request({}))
    for (let i = 0; i < HISTORY_SECONDS; i++) {
      c.advance(1000)
      live.tick()
    }
    expect(live.footprint().rows).toBe(4)
    c.advance(1000)
    live.tick()
    expect(live.footprint()).toEqual({ rows: 0, latencyBytes: 0 })
    // The same names again: counted in fresh rows the tables hold, not in the dropped ones the last request found.
    live.requestEnded(request({}))
    expect(live.footprint().rows).toBe(4)
    expect(live.snapshot('route', 1).rows.map((r) => [r.name, r.requests])).toEqual([['default/app/0', 1]])
  })

  it('counts runs of requests that alternate between routes and directions in their own rows', () => {
    const live = new LiveStats({ autoTick: false })
    for (let i = 0; i < 3; i++) {
      live.requestEnded(request({}))
      live.requestEnded(request({ routeStatName: 'default/app/1' }))
      live.requestEnded(
        request({ direction: 'inbound', listenerName: 'virtualInbound', clusterName: 'inbound|80||' }),
      )
      live.requestEnded(request({ clusterName: 'outbound|80||other.default.svc.cluster.local' }))
    }
    const counts = (by: 'service' | 'route' | 'cluster' | 'listener') =>
      live
        .snapshot(by, 10)
        .rows.map((r) => `${r.direction} ${r.name} ${r.requests}`)
        .sort()
    expect(counts('route')).toEqual([
      'inbound default/app/0 3',
      'outbound default/app/0 6',
      'outbound default/app/1 3',
    ])
    expect(counts('cluster')).toEqual([
      'inbound inbound|80|| 3',
      `outbound ${CLUSTER} 6`,
      'outbound outbound|80||other.default.svc.cluster.local 3',
    ])
    expect(counts('service')).toEqual([
      `inbound ${NO_NAME} 3`,
      'outbound app.default.svc.cluster.local 6',
      'outbound other.default.svc.cluster.local 3',
    ])
    expect(counts('listener')).toEqual(['inbound virtualInbound 3', 'outbound outbound|8080|| 9'])
    live.close()
  })

  it('closes one history second per tick: a tick late by most of a second does not skip one', () => {
    const c = clock()
    const live = new LiveStats({ clock: c.now, autoTick: false })
    const seconds: number[] = []
    // Ticks due each second, the second one 700 ms late and the third on time: Math.round of the clock alone would
    // skip a second (the late tick rounds up) and then repeat one.
    for (const late of [0, 700, 0, 0]) {
      live.requestEnded(request({}))
      c.advance(1000 + late)
      live.tick()
      c.advance(-late)
      seconds.push(...(live.history('service', 60).rows[0]?.points.map((p) => p.t) ?? []).slice(-1))
    }
    expect(seconds.map((t) => t - seconds[0])).toEqual([0, 1, 2, 3])
  })

  it('merges workers: exact sums, quantiles of the merged histograms, history by second', () => {
    const c = clock()
    const fast = new LiveStats({ clock: c.now, autoTick: false })
    const slow = new LiveStats({ clock: c.now, autoTick: false })
    for (let i = 0; i < 90; i++) fast.requestEnded(request({ latencyMs: 10 }))
    for (let i = 0; i < 10; i++) slow.requestEnded(request({ latencyMs: 100, responseStatus: 500 }))
    const report = statReport(
      'service',
      10,
      [fast.snapshot('service', 10), slow.snapshot('service', 10)],
      new Date(),
    )
    expect(report.rows).toHaveLength(1)
    const row = report.rows[0]
    expect(row).toMatchObject({ requests: 100, requestsPerSecond: 10, successRate: 0.9 })
    expect(row.latencyMs?.p50).toBeCloseTo(10, 0)
    expect(row.latencyMs?.p95).toBeCloseTo(100, 0)

    c.advance(1000)
    fast.tick()
    slow.tick()
    const history = historyReport('service', [fast.history('service', 60), slow.history('service', 60)])
    expect(history.rows[0].points).toEqual([
      {
        t: Math.round(c.now() / 1000),
        requestsPerSecond: 100,
        successRate: 0.9,
        latencyMs: expect.objectContaining({ p50: expect.closeTo(19, 0) }),
      },
    ])
  })
})
