// Writes bench/results/<date>.json, .md and .svg, and for a full run copies them to latest.md and latest.svg.

import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { chartFor } from './chart.ts'
import { markdownFor } from './markdown.ts'
import type { BenchResults } from './results.ts'

export const resultsDir = join(import.meta.dirname, '..', 'results')

/** `2026-11-23-2045` (UTC), with `-short` for short runs so they never overwrite a full run. */
export function stampFor(date: Date, short: boolean): string {
  const iso = date.toISOString()
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${short ? '-short' : ''}`
}

/** Writes the files and returns their paths. */
export async function writeResults(results: BenchResults, stamp: string): Promise<string[]> {
  await mkdir(resultsDir, { recursive: true })
  const json = join(resultsDir, `${stamp}.json`)
  // NaN (a metric that does not apply, like the direct path's CPU) becomes null in JSON.
  await writeFile(json, `${JSON.stringify(results, null, 2)}\n`)
  return [json, ...(await writeViews(results, stamp))]
}

/** Rewrites the markdown and chart of a saved run from its JSON (null metrics read back as NaN). */
export async function renderSaved(jsonFile: string): Promise<string[]> {
  const text = await readFile(jsonFile, 'utf8')
  const results = JSON.parse(text, (_key, value: unknown) =>
    value === null ? Number.NaN : value,
  ) as BenchResults
  return writeViews(results, basename(jsonFile, '.json'))
}

async function writeViews(results: BenchResults, stamp: string): Promise<string[]> {
  const md = join(resultsDir, `${stamp}.md`)
  const svg = join(resultsDir, `${stamp}.svg`)
  await writeFile(svg, chartFor(results))
  await writeFile(md, markdownFor(results, `${stamp}.svg`))
  const written = [md, svg]
  // latest.* is the README's table: only a full run of every case and system replaces it.
  if (results.meta.mode === 'full' && !/--(only|systems)\b/.test(results.meta.command)) {
    await writeFile(join(resultsDir, 'latest.md'), markdownFor(results, 'latest.svg'))
    await copyFile(svg, join(resultsDir, 'latest.svg'))
    written.push(join(resultsDir, 'latest.md'), join(resultsDir, 'latest.svg'))
  }
  return written
}
