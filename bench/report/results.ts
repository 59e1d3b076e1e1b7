// The shape of one bench run's results, as written to bench/results/<date>.json and read by the markdown and SVG writers.

import type { ConcurrencySample } from '../workloads/concurrency-case.ts'
import type { RateSample } from '../workloads/fixed-rate.ts'
import type { PacedResult } from '../workloads/paced-client.ts'
import type { ThroughputSample } from '../workloads/throughput.ts'

export interface Meta {
  readonly date: string
  readonly command: string
  readonly mode: 'short' | 'full'
  readonly gitCommit: string
  readonly node: string
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly kernel: string
  readonly upstream: string
  readonly durationSeconds: number
  /** 1-minute load average when the run started and ended: other work on the machine skews the numbers. */
  readonly loadAverage: { readonly start: number; readonly end: number }
}

export interface SystemInfo {
  readonly name: string
  readonly label: string
  readonly detail: string
}

export interface Runs<T> {
  /** One sample per interleaved round, in round order. */
  readonly runs: T[]
  /** Each metric's median over the rounds. */
  readonly median: T
}

export interface ThroughputCase {
  readonly name: string
  readonly title: string
  readonly path: string
  readonly connections: number
  readonly seconds: number
  readonly rounds: number
  /** How the load was made, when it was not autocannon over HTTP/1.1. */
  readonly description?: string
  /** System name → samples. */
  readonly systems: Record<string, Runs<ThroughputSample>>
}

export interface AddedLatency {
  readonly p50us: number
  readonly p90us: number
  readonly p99us: number
}

export interface RateCase {
  readonly title: string
  readonly path: string
  readonly rate: number
  readonly seconds: number
  readonly connections: number
  readonly rounds: number
  readonly systems: Record<string, Runs<RateSample> & { readonly addedVsDirect?: AddedLatency }>
  /** How each system was set up, when the case set them up itself. */
  readonly note?: string
  /** The retries case: the share of requests each endpoint fails, in percent. */
  readonly failPercent?: number
}

export interface ScaleRow {
  readonly services: number
  readonly routes: number
  readonly yamlMiB: number
  /** Spawn to /healthz/ready 200 (Node start-up, module loading, config load + compile, listeners bound). */
  readonly startupMs: number
  /** From a child process that imports src/config/load.ts and compile.ts; undefined when that failed. */
  readonly compile?: {
    readonly coldLoadMs: number
    readonly coldCompileMs: number
    readonly warmLoadMs: number
    readonly warmCompileMs: number
    readonly heapUsedMiB: number
  }
  readonly compileError?: string
  readonly rssIdleMiB: number
  readonly rssAfterLoadMiB: number
  readonly rate: Runs<RateSample>
}

export interface ScaleCase {
  readonly title: string
  readonly rate: number
  readonly seconds: number
  readonly rounds: number
  readonly rows: ScaleRow[]
}

export interface ConcurrencyRow extends Runs<ConcurrencySample> {
  /** Worker processes (`--concurrency`). */
  readonly workers: number
  readonly detail: string
  /** Spawn to /healthz/ready 200 (with N > 1, every worker ready). */
  readonly startupMs: number
  /** Median req/s ÷ the median req/s of one worker. */
  readonly scaling: number
}

export interface ConcurrencyCase {
  readonly title: string
  readonly path: string
  readonly connections: number
  readonly seconds: number
  readonly rounds: number
  readonly rows: ConcurrencyRow[]
}

export interface SideBySideRound {
  readonly outriggerRps: number
  readonly otherRps: number
  readonly outriggerCpuUsPerRequest: number
  readonly otherCpuUsPerRequest: number
  /** Cores the load generator (both clients) and the upstream kept busy; absent in runs before it was measured. */
  readonly clientCores?: number
  /** Errors and non-2xx answers of both clients. */
  readonly errors: number
}

export interface SideBySidePair {
  /** The median over rounds of Outrigger's req/s ÷ the other system's in the same round. */
  readonly rpsRatio: number
  readonly outriggerCpuUsPerRequest: number
  readonly otherCpuUsPerRequest: number
  /** The median over rounds of Outrigger's CPU per request ÷ the other system's in the same round. */
  readonly cpuRatio: number
  readonly rounds: SideBySideRound[]
}

export interface SideBySideCase {
  readonly title: string
  readonly path: string
  readonly connections: number
  readonly seconds: number
  readonly rounds: number
  /**
   * The CPU both systems were pinned to, and the CPUs of the load generator and the upstream; absent
   * when nothing was pinned (a one-CPU machine, and runs before pinning).
   */
  readonly sharedCore?: { readonly systemsCpu: string; readonly clientCpus: string }
  /** Other system's name → its rounds against Outrigger. */
  readonly pairs: Record<string, SideBySidePair>
}

export interface MtlsPairRow {
  /** autocannon, closed loop: the pair's maximum req/s. */
  readonly throughput: ThroughputSample
  /** The paced client at the fixed rate; CPU counts both sidecars. */
  readonly rate: PacedResult & { readonly cpuUsPerRequest: number }
}

export interface MtlsPairCase {
  readonly title: string
  readonly path: string
  /** autocannon's keep-alive connections. */
  readonly connections: number
  /** Seconds of each measurement (throughput, fixed rate, handshakes). */
  readonly seconds: number
  readonly rate: number
  readonly rateConnections: number
  readonly plain: MtlsPairRow
  readonly mtls: MtlsPairRow
  /** The mTLS pair's fixed-rate percentiles minus the plain pair's. */
  readonly added: AddedLatency
  /** New mTLS connections to B's port, one request each. */
  readonly handshakes: {
    readonly perSecond: number
    readonly failed: number
    readonly concurrency: number
    readonly seconds: number
  }
  /** B's RSS idle and with `count` handshaken, idle mTLS connections open. */
  readonly openConnections: {
    readonly count: number
    readonly idleMiB: number
    readonly openMiB: number
    readonly perConnectionKiB: number
  }
}

export interface NodePeerChoice {
  /** Candidate label → req/s (median of the rounds) in short 1 KiB closed-loop runs. */
  readonly candidates: Record<string, number>
  readonly chosen: string
  /** Rounds in which the candidates were loaded at the same moment; absent in runs that loaded each once alone. */
  readonly roundsTogether?: number
}

export interface Failure {
  readonly where: string
  readonly error: string
}

export interface BenchResults {
  readonly meta: Meta
  readonly systems: SystemInfo[]
  readonly nodePeer?: NodePeerChoice
  readonly throughput: ThroughputCase[]
  /** Outrigger and each other proxy loaded at the same moment (drift-free ratios of work per request). */
  readonly sideBySide?: SideBySideCase
  readonly rate?: RateCase
  /** The fixed rate again, to a service whose endpoints fail a share of requests, through retrying proxies. */
  readonly retries?: RateCase
  readonly scale?: ScaleCase
  readonly concurrency?: ConcurrencyCase
  /** Two sidecars in plain text against the same two with Istio mTLS between them. */
  readonly mtls?: MtlsPairCase
  /** Cases that are planned but not built yet (HTTP/2 with h2load, gRPC). */
  readonly pending: string[]
  readonly failures: Failure[]
}
