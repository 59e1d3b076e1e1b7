// .ci/run, the CI entry point: its closing count is this run's, never a report an earlier run left behind.

import { spawnSync } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { repoRoot } from './harness/proxy-process.ts'

/** A project with no dependencies (so `npm ci` has nothing to fetch) whose `npm test` is `script`. */
async function projectWithTestScript(dir: string, script: string): Promise<void> {
  const pkg = { name: 'ci-run-fixture', version: '1.0.0', private: true, scripts: { test: script } }
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg))
  const lock = {
    name: pkg.name,
    version: pkg.version,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: pkg.name, version: pkg.version } },
  }
  await writeFile(join(dir, 'package-lock.json'), JSON.stringify(lock))
  await mkdir(join(dir, '.ci'))
  await copyFile(join(repoRoot, '.ci', 'run'), join(dir, '.ci', 'run'))
}

function ciRun(dir: string): { status: number | null; lastLine: string } {
  const result = spawnSync('bash', [join(dir, '.ci', 'run')], { cwd: dir, encoding: 'utf8', timeout: 60_000 })
  const lines = result.stdout.trim().split('\n')
  return { status: result.status, lastLine: lines[lines.length - 1] ?? '' }
}

describe('.ci/run', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-ci-run-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('does not print a stale report when npm test fails before vitest writes one', async () => {
    await projectWithTestScript(dir, 'exit 3')
    await mkdir(join(dir, 'test-results'))
    const stale = { numPassedTests: 999, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0 }
    await writeFile(join(dir, 'test-results', 'vitest.json'), JSON.stringify(stale))
    const run = ciRun(dir)
    expect(run.lastLine).toBe('0 passed, 0 failed')
    expect(run.status).toBe(3)
  })

  it("prints the count of the report this run's npm test wrote", async () => {
    const report = JSON.stringify({
      numPassedTests: 7,
      numFailedTests: 2,
      numPendingTests: 1,
      numTodoTests: 0,
    })
    await projectWithTestScript(
      dir,
      `mkdir -p test-results && echo '${report}' > test-results/vitest.json && exit 1`,
    )
    const run = ciRun(dir)
    expect(run.lastLine).toBe('7 passed, 2 failed, 1 skipped')
    expect(run.status).toBe(1)
  })
})
