// Every process the bench spawns, tracked so that all of them (and their children) are killed at the end, even on failure.

import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'

export interface Child {
  readonly name: string
  readonly pid: number
  readonly process: ChildProcess
  /** The last 64 KiB the process wrote to stdout and stderr. */
  output(): string
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<string>
  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>
}

export interface StartOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
}

const live = new Set<Child>()
const TAIL = 64 * 1024

/** Spawns `command` in its own process group so that stopping it also stops whatever it forked (nginx workers). */
export function startChild(
  name: string,
  command: string,
  args: readonly string[],
  opts: StartOptions = {},
): Child {
  const proc = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  if (proc.pid === undefined) throw new Error(`cannot spawn ${command}`)
  let tail = ''
  const keep = (chunk: Buffer): void => {
    tail += chunk.toString()
    if (tail.length > TAIL) tail = tail.slice(-TAIL)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const exited = new Promise<string>((resolve) => {
    proc.once('exit', (code, signal) => resolve(signal ?? String(code)))
    proc.once('error', (err) => resolve(`error: ${err.message}`))
  })
  const pid = proc.pid
  const child: Child = {
    name,
    pid,
    process: proc,
    output: () => tail,
    exited,
    async stop(graceMs = 3_000) {
      if (!live.has(child)) return exited.then(() => undefined)
      signalGroup(pid, 'SIGTERM')
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
      // The leader is gone; make sure nothing it forked outlives it.
      signalGroup(pid, 'SIGKILL')
      live.delete(child)
    },
  }
  live.add(child)
  void exited.then(() => {
    if (!live.has(child)) return
    // Died on its own: its group may still hold workers.
    signalGroup(pid, 'SIGKILL')
    live.delete(child)
  })
  return child
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

const scratch = new Set<string>()

/** Removes `dir` when the bench exits, however it exits (the normal path removes it earlier). */
export function removeAtExit(dir: string): void {
  scratch.add(dir)
}

/** Synchronously SIGKILLs every live child's process group and removes scratch directories. */
export function killAll(): void {
  for (const child of live) signalGroup(child.pid, 'SIGKILL')
  live.clear()
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true })
  scratch.clear()
}

/** Stops every live child gracefully, in reverse start order. */
export async function stopAll(): Promise<void> {
  for (const child of [...live].reverse()) await child.stop()
}

/** Kills every child on exit, Ctrl-C, SIGTERM and uncaught errors. */
export function installCleanup(): void {
  process.once('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, killing ${live.size} child process(es)\n`)
      killAll()
      process.exit(130)
    })
  }
}
