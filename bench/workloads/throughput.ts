// Closed-loop HTTP/1.1 keep-alive load with autocannon (N connections, one request in flight each): maximum req/s.

import autocannon from 'autocannon'
import type { Target } from '../systems/system.ts'

export interface ThroughputSample {
  /** Completed 2xx responses per second. */
  readonly rps: number
  /** Response bytes per second, MiB. */
  readonly mibps: number
  /** autocannon's latency percentiles, milliseconds (1 ms resolution). */
  readonly p50ms: number
  readonly p99ms: number
  readonly errors: number
  readonly non2xx: number
}

export interface ThroughputOptions {
  readonly path: string
  readonly connections: number
  readonly seconds: number
}

export async function runThroughput(target: Target, opts: ThroughputOptions): Promise<ThroughputSample> {
  const result = await autocannon({
    url: `http://127.0.0.1:${target.port}${opts.path}`,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.seconds,
    timeout: 10,
    headers: target.host === undefined ? {} : { host: target.host },
  })
  const seconds = result.duration > 0 ? result.duration : opts.seconds
  return {
    rps: result['2xx'] / seconds,
    mibps: result.throughput.average / (1024 * 1024),
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  }
}
