// Istio's tag extraction on Envoy stat names, and the /stats and Prometheus text forms built on it.

import { describe, expect, it } from 'vitest'
import { tagStat } from './envoy-stat-tags.ts'
import {
  selectStats,
  statsFilterProblem,
  statsJson,
  statsPrometheus,
  statsText,
} from './envoy-stats-format.ts'

const reviews = 'outbound|9080|v2|reviews.default.svc.cluster.local'

describe('tagStat (Istio bootstrap stats_tags)', () => {
  it('takes cluster_name up to .svc.cluster.local, then the response code or class', () => {
    expect(tagStat(`cluster.${reviews}.upstream_rq_total`)).toEqual({
      metric: 'envoy_cluster_upstream_rq_total',
      labels: [['cluster_name', reviews]],
    })
    expect(tagStat(`cluster.${reviews}.upstream_rq_503`)).toEqual({
      metric: 'envoy_cluster_upstream_rq',
      labels: [
        ['cluster_name', reviews],
        ['response_code', '503'],
      ],
    })
    expect(tagStat(`cluster.${reviews}.retry.upstream_rq_5xx`)).toEqual({
      metric: 'envoy_cluster_retry_upstream_rq',
      labels: [
        ['cluster_name', reviews],
        ['response_code_class', '5xx'],
      ],
    })
  })

  it('keeps what follows the first dot of a cluster name outside .svc.cluster.local in the metric, as Istio does', () => {
    expect(tagStat('cluster.outbound|443||api.example.com.upstream_cx_total')).toEqual({
      metric: 'envoy_cluster_example_com_upstream_cx_total',
      labels: [['cluster_name', 'outbound|443||api']],
    })
  })

  it('takes listener_address, and leaves untagged stats as envoy_ names', () => {
    expect(tagStat('listener.0.0.0.0_15006.downstream_cx_total')).toEqual({
      metric: 'envoy_listener_downstream_cx_total',
      labels: [['listener_address', '0.0.0.0_15006']],
    })
    expect(tagStat('server.live')).toEqual({ metric: 'envoy_server_live', labels: [] })
    expect(tagStat('tls_inspector.tls_found')).toEqual({
      metric: 'envoy_tls_inspector_tls_found',
      labels: [],
    })
  })

  it("leaves a sidecar's HTTP stat prefix in the name: Istio's http_conn_manager_prefix takes digits and dots only", () => {
    expect(tagStat('http.inbound_0.0.0.0_9080.downstream_rq_2xx')).toEqual({
      metric: 'envoy_http_inbound_0_0_0_0_9080_downstream_rq',
      labels: [['response_code_class', '2xx']],
    })
  })
})

describe('stats text forms', () => {
  const stats = [
    { name: 'server.live', value: 1, type: 'gauge' as const },
    { name: `cluster.${reviews}.upstream_rq_200`, value: 4, type: 'counter' as const },
    { name: `cluster.${reviews}.upstream_rq_2xx`, value: 4, type: 'counter' as const },
    { name: `cluster.${reviews}.upstream_rq_retry`, value: 0, type: 'counter' as const },
  ]

  it('sorts by name, filters by a partial RE2 match, drops zeros with usedonly', () => {
    expect(statsText(selectStats(stats, {}))).toBe(
      `cluster.${reviews}.upstream_rq_200: 4\ncluster.${reviews}.upstream_rq_2xx: 4\ncluster.${reviews}.upstream_rq_retry: 0\nserver.live: 1\n`,
    )
    expect(selectStats(stats, { filter: 'rq_2' }).map((s) => s.value)).toEqual([4, 4])
    expect(selectStats(stats, { usedOnly: true }).map((s) => s.name)).not.toContain(
      `cluster.${reviews}.upstream_rq_retry`,
    )
    expect(statsFilterProblem('(')).toMatch(/^Invalid re2 regex/)
    expect(statsFilterProblem('a.*b')).toBeUndefined()
  })

  it('writes JSON as {"stats":[{"name","value"}]}', () => {
    expect(JSON.parse(statsJson(selectStats(stats, { filter: '^server' })))).toEqual({
      stats: [{ name: 'server.live', value: 1 }],
    })
  })

  it('groups one metric under one # TYPE, labels escaped', () => {
    const text = statsPrometheus(stats)
    expect(text).toBe(
      [
        '# TYPE envoy_cluster_upstream_rq counter',
        `envoy_cluster_upstream_rq{cluster_name="${reviews}",response_code="200"} 4`,
        `envoy_cluster_upstream_rq{cluster_name="${reviews}",response_code_class="2xx"} 4`,
        '# TYPE envoy_cluster_upstream_rq_retry counter',
        `envoy_cluster_upstream_rq_retry{cluster_name="${reviews}"} 0`,
        '# TYPE envoy_server_live gauge',
        'envoy_server_live{} 1',
        '',
      ].join('\n'),
    )
    expect(
      statsPrometheus([{ name: 'cluster.a"b\\c.ns.svc.cluster.local.x', value: 1, type: 'counter' }]),
    ).toContain('cluster_name="a\\"b\\\\c.ns.svc.cluster.local"')
  })
})
