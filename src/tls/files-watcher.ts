// Watches a few files through their directories and calls back, debounced, when anything there changes.

import { type FSWatcher, watch } from 'node:fs'
import { dirname } from 'node:path'
import { log } from '../telemetry/log.ts'

/**
 * Certificate files are replaced rather than edited (`mv`, Kubernetes' `..data` symlink swap), so each
 * file's directory is watched and any change there counts: the caller re-reads and compares contents.
 */
export class FilesWatcher {
  readonly #onChange: () => void
  readonly #debounceMs: number
  readonly #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(paths: readonly string[], onChange: () => void, debounceMs = 100) {
    this.#onChange = onChange
    this.#debounceMs = debounceMs
    for (const directory of new Set(paths.map((path) => dirname(path)))) {
      try {
        const watcher = watch(directory, { persistent: false }, this.#changed)
        watcher.on('error', (err) => log.warning(`watching ${directory}: ${err.message}`))
        this.#watchers.push(watcher)
      } catch (err) {
        log.warning(`cannot watch ${directory}: ${(err as Error).message}`)
      }
    }
  }

  readonly #changed = (): void => {
    if (this.#closed) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#onChange()
    }, this.#debounceMs)
  }

  close(): void {
    this.#closed = true
    for (const watcher of this.#watchers) watcher.close()
    this.#watchers.length = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }
}
