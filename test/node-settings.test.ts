// Scenario: every way of starting the proxy (`outrigger run`, npm start's command, the image's entrypoint) runs it
// with the same V8 settings, and a container memory limit sizes its old generation.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mallocTrimThreshold, oldSpaceMbFor, semiSpaceMb } from '../src/cli/node-settings.ts'
import { createMemoryCgroup, type MemoryCgroup, memoryCgroupSupport } from './harness/memory-cgroup.ts'
import { mainScript, repoRoot, startProxy } from './harness/proxy-process.ts'

const MiB = 1024 * 1024

interface Memory {
  readonly heap_size_limit: string
  readonly old_generation_limit: string
  readonly constrained_memory: string
  readonly exec_argv: readonly string[]
}

/** node's flags in a command line `node <flags> dist/main.js …`, given as words. */
function flagsBefore(words: readonly string[], script: string): string[] {
  const at = words.indexOf(script)
  expect(at, `${script} in ${words.join(' ')}`).toBeGreaterThan(0)
  return words.slice(1, at)
}

/** npm start's node flags (package.json `start`) and the image's (the Dockerfile's ENTRYPOINT). */
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: { start: string } }
const npmStartFlags = flagsBefore(pkg.scripts.start.split(/\s+/), 'dist/main.js')
const entrypointLine = /^ENTRYPOINT (.*)$/m.exec(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'))?.[1]
const imageFlags = flagsBefore(JSON.parse(entrypointLine ?? '[]') as string[], 'dist/main.js')

/**
 * bin/outrigger.js as installed, beside a source tree with no dist/ (so it runs src/main.ts, the code under
 * test, and never a stale build): the `outrigger run` a user types.
 */
const binRoot = mkdtempSync(join(tmpdir(), `outrigger-bin-${process.pid}-`))
mkdirSync(join(binRoot, 'bin'))
copyFileSync(join(repoRoot, 'bin', 'outrigger.js'), join(binRoot, 'bin', 'outrigger.js'))
symlinkSync(join(repoRoot, 'src'), join(binRoot, 'src'))
const outriggerCommand = [process.execPath, join(binRoot, 'bin', 'outrigger.js')]

afterAll(() => rmSync(binRoot, { recursive: true, force: true }))

/** Starts the proxy with `entry` (node, flags, script), returns its /memory and its pid's command line. */
async function memoryOf(
  entry: readonly string[],
  opts: { env?: Record<string, string>; launcher?: readonly string[] } = {},
): Promise<{ memory: Memory; cmdline: string[]; tunables: string | undefined }> {
  const proxy = await startProxy({ resources: {}, entry, ...opts })
  try {
    const memory = (await (await proxy.admin('/memory')).json()) as Memory
    // The pid node was started as is the one serving: the flags were applied by replacing the process, not by a child.
    const cmdline = readFileSync(`/proc/${proxy.child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    // The environment the running image was given (glibc read its tunables from it at start).
    const tunables = readFileSync(`/proc/${proxy.child.pid}/environ`, 'utf8')
      .split('\0')
      .find((entry) => entry.startsWith('GLIBC_TUNABLES='))
      ?.slice('GLIBC_TUNABLES='.length)
    return { memory, cmdline, tunables }
  } finally {
    await proxy.stop()
  }
}

describe('the same V8 settings however the proxy is started', () => {
  it('`outrigger run`, npm start and the image run with the same flags and the same heap', async () => {
    const ways = {
      'outrigger run': await memoryOf(outriggerCommand),
      'npm start': await memoryOf([process.execPath, ...npmStartFlags, mainScript]),
      'the image': await memoryOf([process.execPath, ...imageFlags, mainScript]),
    }
    const reference = ways['outrigger run']
    expect(reference.memory.exec_argv).toContain(`--max-semi-space-size=${semiSpaceMb}`)
    expect(reference.cmdline).toContain(`--max-semi-space-size=${semiSpaceMb}`)
    // gc() for the idle trim's collection (src/runtime/idle-trim.ts).
    expect(reference.memory.exec_argv).toContain('--expose-gc')
    // glibc's trim threshold, fixed through the re-exec's environment.
    expect(reference.tunables).toBe(`glibc.malloc.trim_threshold=${mallocTrimThreshold}`)
    for (const [way, seen] of Object.entries(ways)) {
      expect(seen.memory.exec_argv, way).toEqual(reference.memory.exec_argv)
      expect(seen.tunables, way).toBe(reference.tunables)
      expect(seen.memory.heap_size_limit, way).toBe(reference.memory.heap_size_limit)
    }
    // The young generation is what V8 was made with: node left as started (OUTRIGGER_NODE_SETTINGS=off),
    // whose semi-spaces grow to 16–64 MiB, has a larger heap limit.
    const plain = await memoryOf([process.execPath, mainScript], { env: { OUTRIGGER_NODE_SETTINGS: 'off' } })
    expect(plain.memory.exec_argv).toEqual([])
    expect(Number(plain.memory.heap_size_limit)).toBeGreaterThan(Number(reference.memory.heap_size_limit))
  }, 60_000)

  it("an operator's own flags in NODE_OPTIONS are kept, and nothing is added in their place", async () => {
    const { memory } = await memoryOf(outriggerCommand, { env: { NODE_OPTIONS: '--max-semi-space-size=32' } })
    expect(memory.exec_argv.filter((a) => a.includes('semi-space'))).toEqual([])
    const { memory: ours } = await memoryOf(outriggerCommand)
    // 3 × 32 MiB of young generation, against the proxy's 8 MiB.
    expect(Number(memory.heap_size_limit) - Number(ours.heap_size_limit)).toBeGreaterThanOrEqual(40 * MiB)
  }, 60_000)
})

describe("start-up's garbage", () => {
  it("is collected before the proxy says it is ready: the young generation's pages go back", async () => {
    // Routes enough that reading and compiling them leave the young generation grown.
    const routes = Array.from(
      { length: 300 },
      (_, i) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: route-${i}}
spec:
  hosts: [svc-${i}.default.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /v${i}}}, {headers: {x-team: {exact: team-${i}}}}]
    route: [{destination: {host: svc-${i}.default.svc.cluster.local, port: {number: 8080}}}]
`,
    ).join('---\n')
    const proxy = await startProxy({ resources: { 'routes.yaml': routes } })
    try {
      const memory = (await (await proxy.admin('/memory')).json()) as {
        heap_spaces: Record<string, { physical: number }>
      }
      // Without the collection the young generation keeps its grown semi-spaces (7.5 MiB here).
      expect(memory.heap_spaces.new_space?.physical).toBeLessThan(2 * MiB)
    } finally {
      await proxy.stop()
    }
  }, 60_000)
})

const cgroup = memoryCgroupSupport()

describe.skipIf('skip' in cgroup)(
  `the old generation from a container memory limit${'skip' in cgroup ? `: skipped, ${cgroup.skip}` : ''}`,
  () => {
    const limit = 256 * MiB
    let box: MemoryCgroup | undefined

    beforeAll(() => {
      if ('skip' in cgroup) return
      box = createMemoryCgroup(cgroup, `outrigger-node-settings-${process.pid}`, limit)
    })

    afterAll(() => {
      // The proxies have exited; an empty cgroup is removed with rmdir.
      box?.remove()
    })

    it('follows the limit (node alone would give the old generation 256 MiB, the whole container)', async () => {
      const { memory, cmdline } = await memoryOf(outriggerCommand, { launcher: box?.launcher ?? [] })
      expect(Number(memory.constrained_memory)).toBe(limit)
      const oldSpaceMb = oldSpaceMbFor(limit)
      expect(oldSpaceMb).toBe(80)
      expect(cmdline).toContain(`--max-old-space-size=${oldSpaceMb}`)
      expect(Number(memory.old_generation_limit)).toBe(oldSpaceMb * MiB)
      // V8's whole heap (old and young generations) fits the container with room for node and buffers.
      expect(Number(memory.heap_size_limit)).toBeLessThan(limit / 2)
    }, 60_000)

    it("keeps an operator's --max-old-space-size", async () => {
      const { memory } = await memoryOf(outriggerCommand, {
        launcher: box?.launcher ?? [],
        env: { NODE_OPTIONS: '--max-old-space-size=150' },
      })
      expect(memory.exec_argv.filter((a) => a.includes('old-space'))).toEqual([])
      expect(Number(memory.old_generation_limit)).toBe(150 * MiB)
    }, 60_000)
  },
)
