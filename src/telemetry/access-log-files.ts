// The access-log destinations: one non-blocking writer (sonic-boom) per path, shared by every listener, reopened for rotation.

import sonicBoom from 'sonic-boom'
import { log } from './log.ts'

// sonic-boom is CommonJS: Node's ESM import sees only its module.exports (the class, which carries itself as `.SonicBoom`).
const { SonicBoom } = sonicBoom
type SonicBoom = InstanceType<typeof SonicBoom>

/** Paths written through the process's own descriptors: never opened, so never reopened or closed. */
const standardStreams: Readonly<Record<string, number>> = { '/dev/stdout': 1, '/dev/stderr': 2 }

/**
 * The runtime's access-log files. A writer buffers in memory and writes asynchronously (sonic-boom,
 * minLength 0: a write starts at once, and lines that come while one is in flight go out together
 * with the next), so a slow disk never blocks the event loop. `reopen()` is Envoy's log rotation:
 * after `mv proxy.log proxy.log.1` and SIGUSR1, lines go to a new `proxy.log`.
 */
export class AccessLogFiles {
  readonly #writers = new Map<string, SonicBoom>()
  readonly #failed = new Set<string>()

  /** Queues `line` for `path`, opening the file (append, creating it) on its first line. */
  write(path: string, line: string): void {
    let writer = this.#writers.get(path)
    if (writer === undefined) {
      writer = this.#open(path)
      this.#writers.set(path, writer)
    }
    writer.write(line)
  }

  #open(path: string): SonicBoom {
    const fd = standardStreams[path]
    const writer =
      fd === undefined
        ? new SonicBoom({ dest: path, append: true, mkdir: true, sync: false })
        : new SonicBoom({ fd, sync: false })
    writer.on('error', (err: Error) => {
      // Logged once per path: a full disk must not flood the proxy's own log.
      if (this.#failed.has(path)) return
      this.#failed.add(path)
      log.error(`access log ${path}: ${err.message}`)
    })
    return writer
  }

  /** Reopens every file by its path (after a rotation moved it away); the standard streams stay. */
  reopen(): void {
    for (const [path, writer] of this.#writers) {
      if (standardStreams[path] !== undefined) continue
      this.#failed.delete(path)
      writer.reopen()
    }
  }

  /** Writes out what is buffered and closes the files (shutdown): resolves once every writer has finished. */
  async close(): Promise<void> {
    const closing = [...this.#writers].map(
      ([path, writer]) =>
        new Promise<void>((resolve) => {
          // A file that could not be opened has nothing to write out (and would wait for its open forever).
          if (this.#failed.has(path)) return resolve()
          writer.once('close', () => resolve())
          writer.once('error', () => resolve())
          writer.end()
        }),
    )
    this.#writers.clear()
    await Promise.all(closing)
  }
}
