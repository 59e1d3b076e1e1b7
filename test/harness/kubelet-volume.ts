// A ConfigMap / Secret volume written exactly as kubelet writes one, so tests can swap its files as a cluster does.

import { mkdtemp, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'

/** `..2006_01_02_15_04_05.` as kubelet formats the UTC time of a timestamped directory's name. */
function timestampPrefix(now: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0')
  const date = `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}`
  const time = `${pad(now.getUTCHours())}_${pad(now.getUTCMinutes())}_${pad(now.getUTCSeconds())}`
  return `..${date}_${time}.`
}

/**
 * The layout and update steps of kubernetes pkg/volume/util/atomic_writer.go (AtomicWriter.Write): the
 * files live in `dir/..<timestamp>.<random>/`, `dir/..data` links to that directory, and every visible
 * file is a link `dir/<name> -> ..data/<name>`. An update writes a new timestamped directory, creates
 * `..data_tmp` pointing at it, renames `..data_tmp` over `..data`, adds and removes visible links, and
 * removes the old timestamped directory.
 */
export class KubeletVolume {
  readonly dir: string
  #names = new Set<string>()

  private constructor(dir: string) {
    this.dir = dir
  }

  /** Projects `files` (name → contents) into the existing, empty directory `dir`. */
  static async create(dir: string, files: Record<string, string>): Promise<KubeletVolume> {
    const volume = new KubeletVolume(dir)
    await volume.update(files)
    return volume
  }

  /** The visible path of `name` (a link through `..data`). */
  path(name: string): string {
    return join(this.dir, name)
  }

  /** Replaces the volume's contents with `files`, in kubelet's order of steps. */
  async update(files: Record<string, string>): Promise<void> {
    const dataLink = join(this.dir, '..data')
    const previous = await readlink(dataLink).catch(() => undefined)
    const timestamped = await mkdtemp(join(this.dir, timestampPrefix(new Date())))
    for (const [name, text] of Object.entries(files)) await writeFile(join(timestamped, name), text)
    const tmpLink = join(this.dir, '..data_tmp')
    await symlink(basename(timestamped), tmpLink)
    await rename(tmpLink, dataLink)
    const names = new Set(Object.keys(files))
    for (const name of names) {
      if (!this.#names.has(name)) await symlink(join('..data', name), join(this.dir, name))
    }
    for (const name of this.#names) if (!names.has(name)) await unlink(join(this.dir, name))
    this.#names = names
    if (previous !== undefined) await rm(join(this.dir, previous), { recursive: true, force: true })
  }
}
