// The footprint case's results: every process's readings, and the rows judged against issue 21's targets beside the anchors.

import { median } from '../support/stats.ts'

/** One fresh process: idle, then a fixed rate, then a saturation burst and quiet. */
export interface FootprintSequence {
  readonly idleMiB: number
  readonly rateEndMiB: number
  readonly rateMaxMiB: number
  readonly rateCompleted: number
  readonly rateFailed: number
  readonly rateP99us: number
  readonly burstRps: number
  readonly burstFailed: number
  readonly burstEndMiB: number
  /** RSS at each of the plan's quiet checks. */
  readonly quietMiB: readonly number[]
  /** When each was read, seconds after the burst (a moment past the check when the bench was busy). */
  readonly quietAtSeconds: readonly number[]
}

/** One fresh process: idle keep-alive connections of one protocol. */
export interface FootprintConnections {
  readonly protocol: 'http1' | 'http2' | 'mtls'
  readonly requested: number
  readonly opened: number
  readonly failed: number
  /** 503s (the overload manager shedding while a batch connected) asked again on their connection. */
  readonly retried: number
  /** Connections the proxy had not closed when the "after" reading was taken: the divisor. */
  readonly stillOpen: number
  readonly openSeconds: number
  readonly rssBeforeMiB: number
  readonly rssAfterMiB: number
  readonly heapBeforeMiB: number
  readonly heapAfterMiB: number
  readonly handlesBefore: number
  readonly handlesAfter: number
  /** Upstream connections the proxy's pools held at each reading (part of "after"). */
  readonly upstreamBefore: number
  readonly upstreamAfter: number
  readonly perConnectionKiB: number
  readonly heapPerConnectionKiB: number
}

export interface FootprintImage {
  readonly tag: string
  readonly status: string
  readonly sizeBytes?: number
  readonly created?: string
}

export interface FootprintMeta {
  readonly date: string
  readonly command: string
  readonly gitCommit: string
  readonly node: string
  readonly nodeFlags: readonly string[]
  readonly entry: string
  readonly live: string
  readonly processes: number
  readonly connections: number
  readonly rate: number
  readonly rateSeconds: number
  readonly burstSeconds: number
  readonly idleSeconds: number
  readonly quietChecks: readonly number[]
  readonly durationSeconds: number
  readonly loadAverage: { readonly start: number; readonly end: number }
}

export interface FootprintResults {
  readonly meta: FootprintMeta
  readonly sequences: readonly FootprintSequence[]
  readonly connections: readonly FootprintConnections[]
  readonly image: FootprintImage
  readonly rows: readonly FootprintRow[]
  readonly failures: readonly string[]
}

/** One line of the summary: a median, the per-process values, and the issue's target and anchors. */
export interface FootprintRow {
  readonly name: string
  readonly unit: 'MiB' | 'KiB'
  /** The median over fresh processes; undefined when nothing was measured (the image not built). */
  readonly value?: number
  readonly perProcess: readonly number[]
  /** Issue 21's upper bound, when it sets one. */
  readonly target?: number
  readonly pass?: boolean
  readonly anchors: string
}

const ANCHOR_NODE = 'Node 24 after one node:http request 62 MiB; + undici after one request 78 MiB'
const ANCHOR_RATE = 'Envoy in Istio 1.24 ≈ 60 MB at 1000 req/s; linkerd2-proxy 14–26 MB'

function row(
  name: string,
  unit: FootprintRow['unit'],
  values: readonly number[],
  target: number | undefined,
  anchors = '',
): FootprintRow {
  const value = values.length > 0 ? median(values) : undefined
  const pass = target === undefined || value === undefined ? undefined : value <= target
  return { name, unit, value, perProcess: values, target, pass, anchors }
}

const PROTOCOL_LABELS = {
  http1: 'HTTP/1.1 connection',
  http2: 'HTTP/2 session',
  mtls: 'mTLS connection (STRICT)',
}

/** How many connections the processes held: the count asked for, or the range they opened when fewer. */
function idleCount(xs: readonly FootprintConnections[], requested: number): string {
  const n = (x: number): string => x.toLocaleString('en')
  const open = xs.map((c) => c.stillOpen)
  const [low, high] = [Math.min(...open), Math.max(...open)]
  if (low === requested && high === requested) return n(requested)
  return `${low === high ? n(low) : `${n(low)}–${n(high)}`} of ${n(requested)}`
}

/** The summary rows, from the per-process readings. */
export function footprintRows(
  meta: Pick<FootprintMeta, 'idleSeconds' | 'rate' | 'rateSeconds' | 'quietChecks' | 'connections'>,
  sequences: readonly FootprintSequence[],
  connections: readonly FootprintConnections[],
  image: FootprintImage,
): FootprintRow[] {
  const seq = (f: (s: FootprintSequence) => number): number[] => sequences.map(f)
  const last = meta.quietChecks.length - 1
  const rows = [
    row(
      `Idle, ${meta.idleSeconds} s after start, one request and one scrape`,
      'MiB',
      seq((s) => s.idleMiB),
      80,
      ANCHOR_NODE,
    ),
    row(
      `${meta.rate} req/s for ${meta.rateSeconds} s (fresh process), at the end`,
      'MiB',
      seq((s) => s.rateEndMiB),
      90,
      ANCHOR_RATE,
    ),
    row(
      `${meta.rate} req/s, the most seen (sampled each second)`,
      'MiB',
      seq((s) => s.rateMaxMiB),
      undefined,
    ),
    row(
      'Saturation burst, right after',
      'MiB',
      seq((s) => s.burstEndMiB),
      undefined,
    ),
    ...meta.quietChecks.map((at, i) =>
      row(
        `Saturation burst, then ${at} s quiet`,
        'MiB',
        seq((s) => s.quietMiB[i]),
        i === last ? 110 : undefined,
      ),
    ),
  ]
  for (const protocol of ['http1', 'http2', 'mtls'] as const) {
    const xs = connections.filter((c) => c.protocol === protocol)
    if (xs.length === 0) continue
    const label = `${PROTOCOL_LABELS[protocol]} (${idleCount(xs, meta.connections)} idle)`
    rows.push(
      row(
        `Per ${label}: RSS`,
        'KiB',
        xs.map((c) => c.perConnectionKiB),
        20,
      ),
    )
    rows.push(
      row(
        `Per ${label}: of which V8 heap`,
        'KiB',
        xs.map((c) => c.heapPerConnectionKiB),
        undefined,
      ),
    )
  }
  const imageMiB = image.sizeBytes === undefined ? [] : [image.sizeBytes / 2 ** 20]
  rows.push(
    row(`Image (${image.tag}), uncompressed`, 'MiB', imageMiB, 200, 'the Node binary alone ≈ 121 MiB'),
  )
  return rows
}
