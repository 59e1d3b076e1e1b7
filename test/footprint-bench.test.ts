// Scenario: the footprint bench (bench/footprint.ts --quick) runs end to end and reports every row with plausible numbers.

import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { FootprintResults } from '../bench/report/footprint-results.ts'
import { repoRoot } from './harness/proxy-process.ts'

const outDir = await mkdtemp(join(tmpdir(), `outrigger-footprint-test-${process.pid}-`))

afterAll(async () => {
  await rm(outDir, { recursive: true, force: true })
})

/** A Node 24 process alone holds about 45 MiB (bench/results/module-rss-2026-11-24.md): a proxy cannot hold less. */
const nodeAloneMiB = 45

it("measures idle, 1000 req/s, a burst, 1,000 idle connections of each protocol beside node's floor and the image, and writes them", async () => {
  // The sources through type stripping, not dist/: the test needs no build (the bench's numbers are for dist/).
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bench', 'footprint.ts'), '--quick', '--main', 'src/main.ts', '--out', outDir],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  const keep = (d: Buffer): void => {
    output += d.toString()
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  expect(code, output).toBe(0)

  const files = (await readdir(outDir)).sort()
  expect(files).toHaveLength(2)
  const [json, md] = files
  expect(json).toMatch(/^footprint-\d{4}-\d\d-\d\d-\d{4}-short\.json$/)
  const results = JSON.parse(await readFile(join(outDir, json), 'utf8')) as FootprintResults
  expect(results.failures).toEqual([])
  expect(results.meta.processes).toBe(1)
  expect(results.meta.entry).toBe('src/main.ts')

  const row = (pattern: RegExp) => {
    const found = results.rows.filter((r) => pattern.test(r.name))
    expect(found, String(pattern)).toHaveLength(1)
    return found[0]
  }
  // Every RSS reading of the process: above Node's own floor, and below what a sane proxy holds.
  for (const pattern of [
    /^Idle/,
    /req\/s for 15 s/,
    /the most seen/,
    /right after/,
    /10 s quiet/,
    /20 s quiet/,
  ]) {
    const r = row(pattern)
    expect(r.unit).toBe('MiB')
    expect(r.value, r.name).toBeGreaterThan(nodeAloneMiB)
    expect(r.value, r.name).toBeLessThan(2048)
  }
  expect(row(/the most seen/).value).toBeGreaterThanOrEqual(row(/req\/s for 15 s/).value ?? Number.NaN)
  // The targets the issue sets are judged; whether they pass is the bench's finding, not the test's.
  expect(row(/^Idle/).target).toBe(80)
  expect(typeof row(/^Idle/).pass).toBe('boolean')
  expect(row(/20 s quiet/).target).toBe(110)

  // Each protocol's 1,000 connections all stayed open; each costs something, and less than a MiB.
  for (const label of ['HTTP/1.1 connection', 'HTTP/2 session', 'mTLS connection']) {
    const rss = row(new RegExp(`^Per ${label.replace('/', '\\/')}.*: RSS$`))
    const heap = row(new RegExp(`^Per ${label.replace('/', '\\/')}.*of which V8 heap$`))
    expect(rss.value, rss.name).toBeGreaterThan(0)
    expect(rss.value, rss.name).toBeLessThan(1024)
    expect(heap.value, heap.name).toBeGreaterThan(0)
    expect(heap.value, heap.name).toBeLessThan(1024)
  }
  // Node's own floor beside each: a bare node server given as many connections; Outrigger's share above it.
  // HTTP/1.1's RSS is judged against 20 KiB; HTTP/2's and mTLS's are shown against it, their share above the floor judged.
  for (const label of ['HTTP/1.1 connection', 'HTTP/2 session', 'mTLS connection']) {
    const name = label.replace('/', '\\/')
    const floor = row(new RegExp(`^Per ${name}.*: node's own floor \\(RSS\\)$`))
    expect(floor.value, floor.name).toBeGreaterThan(0)
    expect(floor.value, floor.name).toBeLessThan(1024)
    const above = row(new RegExp(`^Per ${name}.*: Outrigger above node's floor$`))
    expect(above.value, above.name).toBeCloseTo(
      (row(new RegExp(`^Per ${name}.*: RSS$`)).value ?? Number.NaN) - (floor.value ?? Number.NaN),
      6,
    )
  }
  const http1Floor = row(/^Per HTTP\/1\.1.*node's own floor/).value ?? Number.NaN
  expect(row(/^Per HTTP\/1\.1.*: RSS$/).target).toBe(20)
  expect(typeof row(/^Per HTTP\/1\.1.*: RSS$/).pass).toBe('boolean')
  for (const label of ['HTTP\\/2 session', 'mTLS connection']) {
    const rss = row(new RegExp(`^Per ${label}.*: RSS$`))
    expect(rss.target, rss.name).toBe(20)
    expect(rss.judged, rss.name).toBe(false)
    expect(rss.pass, rss.name).toBeUndefined()
    const above = row(new RegExp(`^Per ${label}.*: Outrigger above node's floor$`))
    expect(above.target, above.name).toBeCloseTo(20 - http1Floor, 6)
    expect(typeof above.pass, above.name).toBe('boolean')
  }
  expect(results.connections.map((c) => c.protocol).sort()).toEqual(['http1', 'http2', 'mtls'])
  for (const c of results.connections) {
    expect(c.stillOpen, c.protocol).toBe(1_000)
    expect(c.floor?.stillOpen, c.protocol).toBe(1_000)
    // The proxy holds one handle per open connection (its TCP socket; an idle connection holds no timer).
    expect(c.handlesAfter - c.handlesBefore, c.protocol).toBeGreaterThanOrEqual(1_000)
    expect(c.handlesAfter - c.handlesBefore, c.protocol).toBeLessThan(1_500)
  }

  const image = row(/^Image/)
  if (results.image.status === 'built') expect(image.value).toBeGreaterThan(100)
  else expect(image.value).toBeUndefined()

  const markdown = await readFile(join(outDir, md), 'utf8')
  expect(markdown).toContain('Command: `node bench/footprint.ts --quick')
  expect(markdown).toMatch(/live view off \(the bootstrap's default, as an injected sidecar runs\)/)
  for (const r of results.rows) expect(markdown).toContain(`| ${r.name} |`)
}, 150_000)
