// Watches config files and directories and calls back, debounced, when any of them changes.

import { type FSWatcher, watch } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { log } from '../telemetry/log.ts'

export class ConfigWatcher {
  readonly #onChange: () => void
  readonly #debounceMs: number
  #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | undefined
  #watched = ''

  constructor(onChange: () => void, debounceMs = 100) {
    this.#onChange = onChange
    this.#debounceMs = debounceMs
  }

  /** Watches exactly these paths (files, or directories recursively), replacing the previous set. */
  async watch(paths: readonly string[]): Promise<void> {
    const key = [...paths].sort().join('\n')
    if (key === this.#watched) return
    this.#close()
    this.#watched = key
    for (const path of paths) {
      try {
        const isDir = (await stat(path)).isDirectory()
        // A file is watched through its directory: editors and `mv` replace the file's inode.
        const name = basename(path)
        const watcher = isDir
          ? watch(path, { recursive: true, persistent: false }, this.#changed)
          : watch(dirname(path), { persistent: false }, (_event, file) => {
              if (file === null || file === name) this.#changed()
            })
        watcher.on('error', (err) => log.warning(`watching ${path}: ${err.message}`))
        this.#watchers.push(watcher)
      } catch (err) {
        log.warning(`cannot watch ${path}: ${(err as Error).message}`)
      }
    }
  }

  readonly #changed = (): void => {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#onChange()
    }, this.#debounceMs)
  }

  #close(): void {
    for (const w of this.#watchers) w.close()
    this.#watchers = []
  }

  close(): void {
    this.#close()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#watched = ''
  }
}
