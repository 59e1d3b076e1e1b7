// Scenario: a proxy built with `npm run build` (dist/, as the image runs it) serves the dashboard's page, script and uPlot.

import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { type ProxyProcess, repoRoot, startProxy } from './harness/proxy-process.ts'

const run = promisify(execFile)
/** A copy of what the image's build stage copies (package.json, the tsconfigs, src/), built in a directory of its own. */
const buildRoot = mkdtempSync(join(tmpdir(), `outrigger-build-${process.pid}-`))
let proxy: ProxyProcess | undefined

afterAll(async () => {
  await proxy?.stop()
  rmSync(buildRoot, { recursive: true, force: true })
})

describe('the dashboard of a built proxy', () => {
  it('`npm run build` puts the page in dist, and `node dist/main.js run` serves it and uPlot', async () => {
    for (const name of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src'])
      cpSync(join(repoRoot, name), join(buildRoot, name), { recursive: true })
    symlinkSync(join(repoRoot, 'node_modules'), join(buildRoot, 'node_modules'))
    await run('npm', ['run', 'build'], { cwd: buildRoot, timeout: 90_000 })

    // The harness starts `node src/main.ts`; a launcher swaps the script for the built one.
    const builtMain = join(buildRoot, 'dist', 'main.js')
    proxy = await startProxy({
      extraBootstrap: 'live: {enabled: true}\n',
      resources: {},
      launcher: ['sh', '-c', `node="$0"; shift; exec "$node" '${builtMain}' "$@"`],
    })
    const page = await proxy.admin('/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toContain('/dashboard/dashboard.js')
    for (const [path, text] of [
      ['/dashboard/dashboard.js', 'live/config'],
      ['/dashboard/dashboard.css', '.card'],
      ['/dashboard/uplot.js', 'uPlot'],
      ['/dashboard/uplot.css', '.uplot'],
    ]) {
      const res = await proxy.admin(path)
      expect(res.status, path).toBe(200)
      expect(await res.text(), path).toContain(text)
    }
    const config = (await (await proxy.admin('/live/config')).json()) as { model: { version: number } }
    expect(config.model.version).toBe(1)
  }, 150_000)
})
