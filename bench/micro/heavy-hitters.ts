// Micro-benchmark: what `outrigger top`'s observer (HeavyHitters.requestEnded) costs a finished request, and what a /live/top summary costs admin.
//
// Run: node bench/micro/heavy-hitters.ts   (prints ns per request for a few traffic shapes, and ms per summary)

import { HeavyHitters } from '../../src/live/heavy-hitters.ts'
import type { RequestRecord } from '../../src/telemetry/request-record.ts'

const N = 2_000_000

/** The fields the observer reads, as a finished request's record has them (the rest are never touched). */
interface Fake {
  direction: 'inbound' | 'outbound'
  method: string
  authority: string
  path: string
  /** The request target as the parser gave it (a flat string); `path` is cut from it per request. */
  url: string
  /** The Host header's value, copied per request as the parser's would be a new string each time. */
  host: string
  responseStatus: number
  grpcStatus: string | undefined
  startTime: number
  endTime: number
}

/** A flat copy of `text`, as a string read off the wire is. */
function flat(text: string): string {
  return Buffer.from(text).toString()
}

function records(paths: readonly string[], authorities: readonly string[]): Fake[] {
  return paths.map((path, i) => ({
    direction: i % 7 === 0 ? 'outbound' : 'inbound',
    method: i % 5 === 0 ? 'POST' : 'GET',
    authority: '',
    path: '',
    url: flat(`${path}?page=${i}`),
    host: flat(authorities[i % authorities.length] as string),
    responseStatus: i % 50 === 0 ? 503 : 200,
    grpcStatus: undefined,
    startTime: 0,
    endTime: 0,
  }))
}

/** The loop without the observer, subtracted from each case. */
class Nothing {
  requestEnded(_record: RequestRecord): void {}
}

/** Feeds `n` requests of `shape` to `observer`, ending over `MINUTE` ms, and returns ns per request. */
function feed(
  observer: { requestEnded(record: RequestRecord): void },
  shape: readonly Fake[],
  base: number,
  n: number,
): number {
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const r = shape[i % shape.length] as Fake
    // Requests end over a minute (one table a second), with latencies that vary.
    r.startTime = base + (i * MINUTE) / n
    r.endTime = r.startTime + (i % 97) / 10
    // A request's path and authority are new strings (their hash not yet computed), as a real request's are.
    r.path = r.url.slice(0, r.url.indexOf('?'))
    r.authority = ` ${r.host}`.slice(1)
    observer.requestEnded(r as unknown as RequestRecord)
  }
  return Number(process.hrtime.bigint() - start) / n
}

const MINUTE = 60_000

function time(label: string, shape: readonly Fake[]): void {
  const top = new HeavyHitters()
  const base = performance.now()
  feed(top, shape, base, N / 10)
  feed(new Nothing(), shape, base, N / 10)
  const loop = feed(new Nothing(), shape, base, N)
  const ns = feed(top, shape, base, N) - loop
  console.log(`${label.padEnd(70)} ${ns.toFixed(1).padStart(7)} ns/request`)
  const summaryStart = process.hrtime.bigint()
  const rounds = 20
  for (let i = 0; i < rounds; i++) top.summary(60, performance.timeOrigin + base + MINUTE - 1)
  const ms = Number(process.hrtime.bigint() - summaryStart) / 1e6 / rounds
  console.log(
    `${'  then a 60 s summary of its tables (admin /live/top)'.padEnd(70)} ${ms.toFixed(2).padStart(7)} ms`,
  )
}

const authorities = ['reviews:9080', 'ratings:9080', 'details:9080']
time(
  '10 hot keys (a service with a few routes)',
  records(
    Array.from({ length: 10 }, (_, i) => `/api/v1/item${i}`),
    authorities,
  ),
)
time(
  '150 keys (under the 200 capacity: no eviction)',
  records(
    Array.from({ length: 150 }, (_, i) => `/api/v1/products/${i}`),
    authorities,
  ),
)
time(
  '100k distinct paths (a flood: nearly every request evicts)',
  records(
    Array.from({ length: 100_000 }, (_, i) => `/api/v1/users/${i}/profile`),
    authorities,
  ),
)
time(
  '10k distinct 1 kB paths (cut to 256 characters)',
  records(
    Array.from({ length: 10_000 }, (_, i) => `/${String(i).padStart(6, '0')}${'x'.repeat(1024)}`),
    authorities,
  ),
)
