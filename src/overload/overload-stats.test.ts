// Envoy's overload gauges from every worker's block: the highest worker's pressure and action state.

import { describe, expect, it } from 'vitest'
import { SharedCounters } from '../shared/shared-counters.ts'
import { OverloadStatsWriter, readOverloadStats } from './overload-stats.ts'

describe('overload stats', () => {
  it('reports each gauge as the highest worker’s, in Envoy’s units', () => {
    const counters = SharedCounters.create(64, false)
    const worker0 = new OverloadStatsWriter(counters, 0)
    const worker1 = new OverloadStatsWriter(counters, 1)
    worker0.set('heap', 0.42)
    worker1.set('heap', 0.97)
    worker0.set('eventLoopDelay', 2.5)
    worker0.set('stopAcceptingRequests', 0.25)
    worker1.set('rejectIncomingConnections', 1)
    const stats = new Map(readOverloadStats(counters, 2).map((s) => [s.name, s.value]))
    expect(stats.get('overload.outrigger.resource_monitors.v8_heap.pressure')).toBe(97)
    expect(stats.get('overload.outrigger.resource_monitors.event_loop_delay.pressure')).toBe(250)
    expect(stats.get('overload.envoy.overload_actions.stop_accepting_requests.active')).toBe(0)
    expect(stats.get('overload.envoy.overload_actions.stop_accepting_requests.scale_percent')).toBe(25)
    expect(stats.get('overload.envoy.overload_actions.reject_incoming_connections.active')).toBe(1)
    expect(stats.get('overload.envoy.overload_actions.reject_incoming_connections.scale_percent')).toBe(100)
    expect(stats.get('overload.envoy.overload_actions.disable_http_keepalive.active')).toBe(0)
    // A worker that never sampled reads as zeros.
    expect(
      new Map(readOverloadStats(SharedCounters.create(64, false), 1).map((s) => [s.name, s.value])).get(
        'overload.outrigger.resource_monitors.v8_heap.pressure',
      ),
    ).toBe(0)
  })
})
