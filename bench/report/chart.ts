// Turns a run's results into the SVG chart: req/s per case, p99 and CPU at the fixed rate, retries, concurrency.

import { fixed, int } from './format.ts'
import type { BenchResults } from './results.ts'
import { type Bar, type Panel, renderChart } from './svg.ts'

function label(results: BenchResults, name: string): string {
  return results.systems.find((s) => s.name === name)?.label ?? name
}

function bars(results: BenchResults, values: Record<string, number>): Bar[] {
  return Object.entries(values).map(([name, value]) => ({
    label: label(results, name),
    value,
    accent: name.startsWith('outrigger'),
  }))
}

export function chartFor(results: BenchResults): string {
  const panels: Panel[] = []
  for (const c of results.throughput) {
    const values: Record<string, number> = {}
    for (const [name, runs] of Object.entries(c.systems)) values[name] = runs.median.rps
    panels.push({ title: `${c.title}: req/s (higher is better)`, format: int, bars: bars(results, values) })
  }
  const side = results.sideBySide
  if (side !== undefined && Object.keys(side.pairs).length > 0) {
    // Pairs in order, Outrigger's bar first: its CPU per request in the rounds it shared with the system below it.
    const cpu: Bar[] = []
    for (const [name, pair] of Object.entries(side.pairs)) {
      cpu.push({
        label: 'Outrigger',
        value: pair.outriggerCpuUsPerRequest,
        accent: true,
      })
      cpu.push({ label: label(results, name), value: pair.otherCpuUsPerRequest, accent: false })
    }
    panels.push({
      title: 'Loaded side by side, 1 KiB: CPU µs per request (lower is better)',
      format: (v) => fixed(v, 1),
      bars: cpu,
    })
  }
  const rate = results.rate
  if (rate !== undefined) {
    const p99: Record<string, number> = {}
    const cpu: Record<string, number> = {}
    for (const [name, runs] of Object.entries(rate.systems)) {
      p99[name] = runs.median.p99us
      if (Number.isFinite(runs.median.cpuSecPer1k)) cpu[name] = runs.median.cpuSecPer1k * 1000
    }
    panels.push({
      title: `p99 latency at ${int(rate.rate)} req/s, µs (lower is better)`,
      format: int,
      bars: bars(results, p99),
    })
    panels.push({
      title: `CPU ms per 1000 requests at ${int(rate.rate)} req/s (lower is better)`,
      format: (v) => fixed(v, 1),
      bars: bars(results, cpu),
    })
  }
  const retries = results.retries
  if (retries !== undefined) {
    const cpu: Record<string, number> = {}
    const failed: Record<string, number> = {}
    for (const [name, runs] of Object.entries(retries.systems)) {
      if (Number.isFinite(runs.median.cpuSecPer1k)) cpu[name] = runs.median.cpuSecPer1k * 1000
      failed[name] = (100 * runs.median.errors) / (retries.rate * retries.seconds)
    }
    panels.push({
      title: `Retrying a flaky service at ${int(retries.rate)} req/s: requests still failed, % (lower is better)`,
      format: (v) => fixed(v, 2),
      bars: bars(results, failed),
    })
    panels.push({
      title: `Retrying a flaky service at ${int(retries.rate)} req/s: CPU ms per 1000 requests (lower is better)`,
      format: (v) => fixed(v, 1),
      bars: bars(results, cpu),
    })
  }
  const conc = results.concurrency
  if (conc !== undefined && conc.rows.length > 0) {
    panels.push({
      title: 'Outrigger --concurrency N, 1 KiB: req/s (higher is better)',
      format: int,
      bars: conc.rows.map((r) => ({
        label: `Outrigger, ${r.workers} worker${r.workers === 1 ? '' : 's'}`,
        value: r.median.rps,
        accent: true,
      })),
    })
  }
  const m = results.meta
  return renderChart(
    `Outrigger benchmark, ${m.date} (${m.mode})`,
    `${m.command} · ${m.cpu}, ${m.cores} cores · node ${m.node} · commit ${m.gitCommit} · HTTP/1.1 on loopback, median of interleaved rounds`,
    panels,
  )
}
