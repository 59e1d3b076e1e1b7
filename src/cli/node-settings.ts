// The V8 settings every way of running the proxy gets (npm start, the image, `outrigger run`), applied by re-executing node once.

import { totalmem } from 'node:os'

const MiB = 1024 * 1024

/**
 * V8's young generation capped at 4 MiB semi-spaces. Node's default lets it grow to 3 × 16–64 MiB under
 * load (8 MiB took about 70 MiB off the RSS, bench/results/semi-space-2026-11-24.md); V8 doubles the
 * semi-spaces whenever as much has survived scavenges as they hold, which at 1000 req/s happens about 30 s
 * in, and at 8 MiB that kept 6 MiB more resident from then on. 4 MiB holds a minute at 1000 req/s near
 * 87 MiB for about 3 % more instructions per request in scavenges (bench/results/rate-rss-2026-12-07.md).
 */
export const semiSpaceMb = 4

/**
 * What the proxy holds outside the old generation before any traffic, in MiB: node itself and the
 * non-heap part of an idle proxy (about 70–80 MiB of its 100–113 MiB RSS) and the young generation (set at
 * 8 MiB semi-spaces, at most 24 MiB; at 4 MiB, at most 12, which leaves that much more room), rounded up
 * (bench/results/v8-settings-2026-12-07.md).
 */
export const fixedFootprintMb = 96

/** The old generation is never given less: a loaded proxy's heap is about 20 MiB, and config reloads build a second model beside it. */
export const minOldSpaceMb = 64

/**
 * The old generation's limit for a container limited to `limitBytes`, in MiB: half of what the fixed
 * footprint leaves. The other half is for what the old generation does not count: request and response
 * bodies (Buffers, malloc'd outside the V8 heap) and the memory the allocator keeps after a burst. So
 * the overload manager, which sheds load as the old generation nears this limit (docs/overload.md),
 * acts before the kernel's OOM killer would. Node alone gives V8 half of the limit and never less than
 * 256 MiB (V8's Heap::ConfigureDefaults from uv_get_constrained_memory), which is more than a 256 MiB
 * container holds.
 */
export function oldSpaceMbFor(limitBytes: number): number {
  return Math.max(minOldSpaceMb, Math.floor((limitBytes / MiB - fixedFootprintMb) / 2))
}

/** The memory limit of the process's container (cgroup v1 or v2), or undefined when it has none below the machine's memory. */
export function containerMemoryLimit(
  constrained = process.constrainedMemory(),
  machine = totalmem(),
): number | undefined {
  return constrained > 0 && constrained < machine ? constrained : undefined
}

/**
 * glibc's trim threshold, fixed: free memory at the top of an arena beyond it goes back to the kernel at
 * free(). glibc raises the threshold by itself (up to 64 MiB) each time a large mmapped block is freed, and
 * malloc_trim does not shrink the top of a thread's arena, so the free memory V8's worker threads left at
 * the top of theirs stayed resident under load. Fixed at 128 KiB (glibc's starting value), a minute at
 * 1000 req/s ended at 87 MiB against 90 (bench/results/rate-rss-2026-12-07.md). Setting it also fixes the
 * mmap threshold at its 128 KiB start: larger blocks are always mmapped.
 */
export const mallocTrimThreshold = 128 * 1024

/**
 * The environment the proxy wants and the process does not have: glibc reads its tunables once, at start,
 * so they reach the allocator through the re-exec. An operator's own threshold (GLIBC_TUNABLES
 * `glibc.malloc.trim_threshold` or MALLOC_TRIM_THRESHOLD_) is left as given; other tunables are kept
 * beside ours.
 */
export function missingEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const tunables = env.GLIBC_TUNABLES ?? ''
  if (env.MALLOC_TRIM_THRESHOLD_ !== undefined || /(^|:)glibc\.malloc\.trim_threshold=/.test(tunables))
    return {}
  const ours = `glibc.malloc.trim_threshold=${mallocTrimThreshold}`
  return { GLIBC_TUNABLES: tunables === '' ? ours : `${tunables}:${ours}` }
}

/** Whether `args` (node's own arguments, or NODE_OPTIONS split) set V8 flag `name` (dashes or underscores; a boolean's `--no-` too). */
function setsFlag(args: readonly string[], name: string): boolean {
  const pattern = new RegExp(`^--(no-)?${name.replaceAll('-', '[-_]')}(=|$)`)
  return args.some((arg) => pattern.test(arg))
}

/**
 * The node flags the proxy wants and the process does not have: each setting an operator gave (on
 * node's command line or in NODE_OPTIONS) is left as the operator gave it.
 */
export function missingNodeFlags(
  execArgv: readonly string[],
  nodeOptions: string,
  limitBytes: number | undefined,
): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)]
  const missing: string[] = []
  if (!setsFlag(given, 'max-semi-space-size')) missing.push(`--max-semi-space-size=${semiSpaceMb}`)
  // For the idle trim's collection (src/runtime/idle-trim.ts): without it a burst's buffers stay resident.
  if (!setsFlag(given, 'expose-gc')) missing.push('--expose-gc')
  if (limitBytes !== undefined && !setsFlag(given, 'max-old-space-size'))
    missing.push(`--max-old-space-size=${oldSpaceMbFor(limitBytes)}`)
  return missing
}

/**
 * Gives this process the proxy's node flags. V8 sizes its heap once, when the isolate is made: a flag
 * set later with v8.setFlagsFromString leaves the young generation's and the old generation's limits
 * as they were, and glibc reads its tunables only at start. So when a flag or a tunable is missing, node is started again in this same process (execve: same
 * pid, same stdio, nothing left behind), with the flags before the script and the same arguments.
 * Returns only when nothing is missing, with OUTRIGGER_NODE_SETTINGS=off, or on a node without
 * process.execve (then it runs as it is).
 */
export function applyNodeSettings(): void {
  // The operator's way to run node exactly as started (node does not take every V8 flag in NODE_OPTIONS,
  // --no-optimize-for-size among them).
  if (process.env.OUTRIGGER_NODE_SETTINGS === 'off') return
  const missing = missingNodeFlags(process.execArgv, process.env.NODE_OPTIONS ?? '', containerMemoryLimit())
  const environment = missingEnvironment(process.env)
  if (missing.length === 0 && Object.keys(environment).length === 0) return
  if (typeof process.execve !== 'function') return
  // A failed execve aborts node ("process.execve failed with error code …"): OUTRIGGER_NODE_SETTINGS=off
  // is the way out where a sandbox refuses it.
  process.execve(
    process.execPath,
    [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)],
    { ...process.env, ...environment },
  )
}
