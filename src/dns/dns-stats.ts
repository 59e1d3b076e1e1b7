// The DNS proxy's metrics, named as Istio's agent exports them (pkg/dns/client/monitoring.go, with the agent's istio_agent_ prefix).

import { Counter, Histogram, type Registry } from '../telemetry/prom-metrics.ts'

export class DnsStats {
  readonly requests: Counter
  readonly upstreamRequests: Counter
  readonly upstreamFailures: Counter
  readonly upstreamDuration: Histogram

  constructor(registry: Registry) {
    const registers = [registry]
    this.requests = new Counter({
      name: 'istio_agent_dns_requests_total',
      help: 'Total number of DNS requests.',
      registers,
    })
    this.upstreamRequests = new Counter({
      name: 'istio_agent_dns_upstream_requests_total',
      help: 'Total number of DNS requests forwarded to upstream.',
      registers,
    })
    this.upstreamFailures = new Counter({
      name: 'istio_agent_dns_upstream_failures_total',
      help: 'Total number of DNS requests that no upstream answered (answered SERVFAIL).',
      registers,
    })
    this.upstreamDuration = new Histogram({
      name: 'istio_agent_dns_upstream_request_duration_seconds',
      help: 'Total time in seconds Istio takes to get DNS response from upstream.',
      buckets: [0.001, 0.005, 0.01, 0.1, 1, 5],
      registers,
    })
  }
}
