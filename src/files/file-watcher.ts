// Watches config files and directories (Istio resources, certificates) and calls back, debounced, when they change, Kubernetes volume swaps included.

import { type FSWatcher, statSync, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import { log } from '../telemetry/log.ts'

/**
 * Names that kubelet reserves in a ConfigMap or Secret volume (kubernetes pkg/volume/util/atomic_writer.go):
 * `..data`, `..data_tmp` and the `..<timestamp>` directories. An update writes a new timestamped
 * directory, points `..data_tmp` at it, renames that over `..data` and removes the old directory; the
 * visible `x.yaml -> ..data/x.yaml` links never change, so no event ever names `x.yaml`.
 */
function isVolumeSwapName(name: string): boolean {
  return name.startsWith('..')
}

/**
 * One watcher for every input read from disk. A directory is watched recursively and any change in it
 * counts. A file is watched through its directory, since editors and `mv` replace its inode and a
 * Kubernetes volume swaps it by renaming `..data`: an event naming the file, or a `..` name, counts.
 * The callback may run for a change that leaves the contents the same; callers re-read and compare.
 */
export class FileWatcher {
  readonly #onChange: () => void
  readonly #debounceMs: number
  #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | undefined
  #watched = ''
  #closed = false

  constructor(onChange: () => void, debounceMs = 100) {
    this.#onChange = onChange
    this.#debounceMs = debounceMs
  }

  /**
   * Watches exactly these paths (files, or directories recursively), replacing the previous set; the
   * same set again changes nothing. Runs when config is applied, never on the request path.
   */
  watch(paths: readonly string[]): void {
    const key = [...paths].sort().join('\n')
    if (key === this.#watched) return
    this.#unwatch()
    this.#closed = false
    this.#watched = key
    const files = new Map<string, Set<string>>()
    for (const path of paths) {
      let isDirectory: boolean
      try {
        isDirectory = statSync(path).isDirectory()
      } catch (err) {
        log.warning(`cannot watch ${path}: ${(err as Error).message}`)
        continue
      }
      if (isDirectory) this.#add(path, true, this.#changed)
      else {
        const names = files.get(dirname(path)) ?? new Set<string>()
        names.add(basename(path))
        files.set(dirname(path), names)
      }
    }
    // One watcher per directory, however many of its files are watched.
    for (const [directory, names] of files) {
      const listener = (_event: string, name: string | null): void => {
        if (name === null || names.has(name) || isVolumeSwapName(name)) this.#changed()
      }
      this.#add(directory, false, listener)
    }
  }

  #add(directory: string, recursive: boolean, listener: (event: string, name: string | null) => void): void {
    try {
      const watcher = watch(directory, { recursive, persistent: false }, listener)
      watcher.on('error', (err) => log.warning(`watching ${directory}: ${err.message}`))
      this.#watchers.push(watcher)
    } catch (err) {
      log.warning(`cannot watch ${directory}: ${(err as Error).message}`)
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

  #unwatch(): void {
    for (const w of this.#watchers) w.close()
    this.#watchers = []
  }

  /** Stops watching; a change already noticed does not call back any more. */
  close(): void {
    this.#closed = true
    this.#unwatch()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#watched = ''
  }
}
