// A child memory cgroup with a limit, v1 or v2, whichever the kernel gives this process, for a proxy to run in.

import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Where a child cgroup can go and how its memory limit is written, or why there is none. */
export type MemoryCgroupSupport =
  | { readonly version: 1 | 2; readonly parent: string; readonly limitFile: string }
  | { readonly skip: string }

/** A created child cgroup: `launcher` runs a command inside it (the harness's startProxy option). */
export interface MemoryCgroup {
  readonly dir: string
  readonly launcher: readonly string[]
  /** Removes the cgroup; it must be empty (its processes have exited). */
  remove(): void
}

/** The mount points of `fsType` in /proc/self/mounts with their options. */
function mounts(fsType: string): { point: string; options: string[] }[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[2] === fsType)
    .map((fields) => ({ point: fields[1] ?? '', options: (fields[3] ?? '').split(',') }))
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Which hierarchy limits this process's memory, decided as libuv's uv_get_constrained_memory (which node
 * hands V8) decides it: a `N:memory:<path>` line in /proc/self/cgroup is cgroup v1, whose child goes
 * under this process's own memory cgroup, so any limit above it still holds (memory.limit_in_bytes);
 * with only the `0::<path>` line it is cgroup v2 (memory.max), whose child goes at the mount's root,
 * the one cgroup that may both hold processes and give its children the memory controller.
 */
export function memoryCgroupSupport(): MemoryCgroupSupport {
  if (process.platform !== 'linux') return { skip: 'cgroups are Linux only' }
  if (process.getuid?.() !== 0) return { skip: 'needs root to create a cgroup' }
  const lines = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
  const v1 = lines.find((fields) => fields.length >= 3 && (fields[1] ?? '').split(',').includes('memory'))
  if (v1 !== undefined) {
    const mount = mounts('cgroup').find((m) => m.options.includes('memory'))
    if (mount === undefined) return { skip: 'the cgroup v1 memory controller is not mounted' }
    const parent = join(mount.point, fields(v1))
    if (!writable(parent)) return { skip: `${parent} is not writable` }
    return { version: 1, parent, limitFile: 'memory.limit_in_bytes' }
  }
  if (!lines.some((f) => f[0] === '0' && f[1] === '')) return { skip: 'this process is in no memory cgroup' }
  const mount = mounts('cgroup2')[0]
  if (mount === undefined) return { skip: 'no cgroup v2 hierarchy is mounted' }
  let subtree = ''
  try {
    subtree = readFileSync(join(mount.point, 'cgroup.subtree_control'), 'utf8')
  } catch {
    return { skip: `${mount.point} has no cgroup.subtree_control` }
  }
  if (!subtree.split(/\s+/).includes('memory'))
    return { skip: `${mount.point} does not give its children the memory controller` }
  if (!writable(mount.point)) return { skip: `${mount.point} is not writable` }
  return { version: 2, parent: mount.point, limitFile: 'memory.max' }
}

/** The path part of a /proc/self/cgroup line (it may itself hold colons). */
function fields(line: string[]): string {
  return line.slice(2).join(':')
}

/** Creates `name` under the supported hierarchy with a memory limit of `limitBytes`. */
export function createMemoryCgroup(
  support: Exclude<MemoryCgroupSupport, { skip: string }>,
  name: string,
  limitBytes: number,
): MemoryCgroup {
  const dir = join(support.parent, name)
  mkdirSync(dir)
  try {
    writeFileSync(join(dir, support.limitFile), String(limitBytes))
  } catch (err) {
    rmdirSync(dir)
    throw err
  }
  const procs = join(dir, 'cgroup.procs')
  return {
    dir,
    // The shell moves itself into the cgroup, then becomes the command: node starts inside the limit.
    launcher: ['sh', '-c', `echo $$ > '${procs}' && exec "$@"`, 'sh'],
    remove(): void {
      if (existsSync(dir)) rmdirSync(dir)
    },
  }
}
