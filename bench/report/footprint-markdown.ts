// The footprint case's markdown (the summary table beside issue 21's targets and anchors, then every process) and its files.

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CONNECTION_TARGET_KIB, type FootprintResults, type FootprintRow } from './footprint-results.ts'

const f1 = (x: number): string => x.toFixed(1)
const f0 = (x: number): string => x.toFixed(0)

function cell(row: FootprintRow): string {
  return row.value === undefined ? 'not built' : `${f1(row.value)} ${row.unit}`
}

function verdict(row: FootprintRow): string {
  if (row.target === undefined) return ''
  if (row.judged === false && row.value !== undefined)
    return row.value <= row.target ? 'within (not judged)' : 'over (not judged)'
  if (row.pass === undefined) return '—'
  return row.pass ? 'pass' : '**FAIL**'
}

/** The summary table alone (also printed on the console). */
export function footprintTable(results: FootprintResults): string {
  const lines = [
    `| Measure | Outrigger, or as the row says (median of ${results.meta.processes}) | Per process | Target (issue 21) | | Anchors, notes |`,
    '| --- | ---: | --- | ---: | --- | --- |',
  ]
  for (const r of results.rows) {
    const per = r.perProcess.map((x) => f1(x)).join(' / ')
    const target =
      r.target === undefined ? '' : `≤ ${Number.isInteger(r.target) ? r.target : f1(r.target)} ${r.unit}`
    const notes = [r.anchors, r.note ?? ''].filter(Boolean).join('; ')
    lines.push(`| ${r.name} | ${cell(r)} | ${per} | ${target} | ${verdict(r)} | ${notes} |`)
  }
  return lines.join('\n')
}

export function footprintMarkdown(results: FootprintResults): string {
  const { meta } = results
  const quiet = meta.quietChecks.map((s) => `${s} s`).join(', ')
  const floors = results.connections.flatMap((c) => (c.floor === undefined ? [] : [{ c, floor: c.floor }]))
  const out = [
    `# Footprint (${meta.date})`,
    '',
    `Command: \`${meta.command}\` at \`${meta.gitCommit}\`, node ${meta.node}, \`node ${meta.nodeFlags.join(' ')} ${meta.entry} run\`;`,
    `medians of ${meta.processes} fresh process(es) per measurement; ${f0(meta.durationSeconds)} s; load average ${meta.loadAverage.start.toFixed(2)} at start, ${meta.loadAverage.end.toFixed(2)} at end.`,
    `Default features: metrics on, tracing off, access log off, live view ${meta.live}. One process (no \`--concurrency\`),`,
    "an ingress listener (Sidecar, protocol HTTP) in front of the bench's nginx upstream (1 KiB and 64 KiB static files).",
    "RSS is VmRSS of the proxy's pid (its threads included).",
    '',
    footprintTable(results),
    '',
    '## How',
    '',
    `- **Idle / rate / burst**: one fresh process each; one GET and one scrape of the stats port's /stats/prometheus (as a pod's Prometheus every 15 s), ${meta.idleSeconds} s, RSS; then the paced client (bench/workloads/paced-client.ts)`,
    `  at ${meta.rate} req/s for ${meta.rateSeconds} s over 16 keep-alive connections, RSS sampled each second; then autocannon, 50 connections,`,
    `  ${f0((meta.burstSeconds * 2) / 3)} s of 1 KiB and ${f0(meta.burstSeconds / 3)} s of 64 KiB responses; RSS right after and ${quiet} after it ended.`,
    "  While it sits quiet, the same round's per-connection processes run (their CPU does not change an idle process's RSS).",
    `- **Per connection**: one fresh process per protocol, one after the other, started with \`--inspect=127.0.0.1:<port>\``,
    '  (no session attached until the readings). One connection of the kind first, closed again; "before"; then the',
    '  connections, each carrying one GET /1k and left open: HTTP/1.1 keep-alive; h2c with prior knowledge, one finished',
    '  stream per session; TLS with a mesh client certificate and ALPN istio-http/1.1 to an inbound listener with',
    '  PeerAuthentication STRICT. 200 at a time (TLS 50: handshakes hold the event loop; a 503 of the overload manager is',
    '  asked again on its connection), as many as open within 45 s (this proxy closes an idle mTLS connection after about',
    '  60 s, so every one must be read before that); then "after". Each reading follows two full collections (CDP',
    '  `HeapProfiler.collectGarbage`) and 0.5 s: RSS, and the live V8 heap (admin /memory `allocated`). Per connection =',
    '  (after − before) ÷ connections still open; "after" also holds the upstream connections the concurrent requests',
    '  opened (counted in the table below).',
    ...(floors.length === 0
      ? []
      : [
          "- **Node's own floor**: right after each Outrigger process of a protocol, a fresh bare node server of that protocol",
          '  (bench/systems/node-floor-idle-server.ts: node:http, node:http2 h2c, or node:https requiring and verifying the mesh',
          "  client certificate: same certificates, the proxy's TLS versions, suites and curves, ALPN istio-http/1.1 by a callback",
          `  as Outrigger selects it), answering GET /1k itself, with the proxy's node flags (\`${meta.nodeFlags.join(' ')}\`) and glibc trim`,
          '  threshold, gets as many connections as that process held, opened and read the same way (its V8 heap by CDP',
          "  `Runtime.getHeapUsage`). Before each of its readings it also makes what the proxy's idle trim makes (V8's memory-reducing",
          '  collection and malloc_trim), so the floor is the least node keeps. "Outrigger above node\'s floor" is the difference,',
          `  process by process. HTTP/1.1's RSS is judged against ${CONNECTION_TARGET_KIB} KiB. HTTP/2's and mTLS's floors are node's (nghttp2's`,
          "  16 KiB outbound frame buffer per session; TLSWrap's two BIO rings, about 34 KiB, results/connection-heap-2026-12-07.md):",
          `  their raw RSS is shown against ${CONNECTION_TARGET_KIB} KiB, not judged, and Outrigger's share above node's floor is judged against`,
          `  ${CONNECTION_TARGET_KIB} KiB − node's HTTP/1.1 floor (the share the target leaves a proxy on HTTP/1.1): the target grows by what node`,
          '  charges for the protocol over HTTP/1.1, nothing else.',
        ]),
    `- **Image**: \`podman image inspect --format '{{.Size}}'\` of ${results.image.tag}: ${results.image.status}${results.image.created === undefined ? '' : `, created ${results.image.created}`}.`,
    '',
    '## Every process',
    '',
    `| # | idle MiB | ${meta.rate} req/s end / max MiB | completed / failed, p99 µs | burst req/s (failed) | right after MiB | ${quiet} quiet MiB |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.sequences.map(
      (s, i) =>
        `| ${i + 1} | ${f1(s.idleMiB)} | ${f1(s.rateEndMiB)} / ${f1(s.rateMaxMiB)} | ${s.rateCompleted} / ${s.rateFailed}, ${s.rateP99us} | ${f0(s.burstRps)} (${s.burstFailed}) | ${f1(s.burstEndMiB)} | ${s.quietMiB.map((m, j) => `${f1(m)} (${f0(s.quietAtSeconds[j] ?? Number.NaN)} s)`).join(' / ')} |`,
    ),
    '',
    '| Protocol | opened / failed / still open (503s asked again) | seconds to open | RSS before → after MiB | heap before → after MiB | handles before → after | upstream connections before → after | KiB per connection (heap) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.connections.map(
      (c) =>
        `| ${c.protocol} | ${c.opened} / ${c.failed} / ${c.stillOpen} (${c.retried}) | ${f1(c.openSeconds)} | ${f1(c.rssBeforeMiB)} → ${f1(c.rssAfterMiB)} | ${f1(c.heapBeforeMiB)} → ${f1(c.heapAfterMiB)} | ${c.handlesBefore} → ${c.handlesAfter} | ${c.upstreamBefore} → ${c.upstreamAfter} | ${f1(c.perConnectionKiB)} (${f1(c.heapPerConnectionKiB)}) |`,
    ),
  ]
  if (floors.length > 0)
    out.push(
      '',
      "| Node's floor for | opened / failed / still open | seconds to open | RSS before → after MiB | heap before → after MiB | KiB per connection (heap) | Outrigger's KiB per connection, above the floor |",
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...floors.map(
        ({ c, floor }) =>
          `| ${c.protocol} | ${floor.opened} / ${floor.failed} / ${floor.stillOpen} | ${f1(floor.openSeconds)} | ${f1(floor.rssBeforeMiB)} → ${f1(floor.rssAfterMiB)} | ${f1(floor.heapBeforeMiB)} → ${f1(floor.heapAfterMiB)} | ${f1(floor.perConnectionKiB)} (${f1(floor.heapPerConnectionKiB)}) | ${f1(c.perConnectionKiB)}, ${f1(c.perConnectionKiB - floor.perConnectionKiB)} |`,
      ),
    )
  if (results.failures.length > 0) out.push('', '## Failures', '', ...results.failures.map((x) => `- ${x}`))
  return `${out.join('\n')}\n`
}

/** Writes `<dir>/<stamp>.md` and `.json`; returns their paths. */
export async function writeFootprint(
  results: FootprintResults,
  dir: string,
  stamp: string,
): Promise<string[]> {
  await mkdir(dir, { recursive: true })
  const md = join(dir, `${stamp}.md`)
  const json = join(dir, `${stamp}.json`)
  await writeFile(md, footprintMarkdown(results))
  await writeFile(json, `${JSON.stringify(results, null, 2)}\n`)
  return [md, json]
}
