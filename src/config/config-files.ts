// Expands config paths (files or directories) into the YAML and JSON files they name, in a stable order.

import { readdir, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ConfigMessage } from './messages.ts'

const CONFIG_FILE = /\.(ya?ml|json)$/i

export interface ExpandedPaths {
  /** Files in the order given; each directory's files sorted by path. No file appears twice. */
  readonly files: string[]
  /** Errors for paths that do not exist or cannot be read, at line 0. */
  readonly messages: ConfigMessage[]
}

/**
 * A file path is taken as is, whatever its extension. A directory contributes every `*.yaml`, `*.yml` and
 * `*.json` below it; entries whose names start with a dot are skipped (Kubernetes ConfigMap mounts keep
 * a second copy of every file under `..data/`).
 */
export async function expandConfigPaths(paths: readonly string[]): Promise<ExpandedPaths> {
  const files: string[] = []
  const messages: ConfigMessage[] = []
  const seen = new Set<string>()
  const add = async (file: string): Promise<void> => {
    const real = await realpath(file).catch(() => file)
    if (seen.has(real)) return
    seen.add(real)
    files.push(file)
  }

  for (const path of paths) {
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => error)
    if (info instanceof Error) {
      const reason = info.code === 'ENOENT' ? 'no such file' : `cannot read: ${info.message}`
      messages.push({ severity: 'error', file: path, line: 0, message: reason })
    } else if (info.isDirectory()) {
      for (const file of (await filesBelow(path, new Set())).sort()) await add(file)
    } else {
      await add(path)
    }
  }
  return { files, messages }
}

async function filesBelow(directory: string, visited: Set<string>): Promise<string[]> {
  const real = await realpath(directory)
  if (visited.has(real)) return []
  visited.add(real)
  const files: string[] = []
  for (const name of await readdir(directory)) {
    if (name.startsWith('.')) continue
    const path = join(directory, name)
    const info = await stat(path).catch(() => undefined)
    if (info?.isDirectory()) files.push(...(await filesBelow(path, visited)))
    else if (info?.isFile() && CONFIG_FILE.test(name)) files.push(path)
  }
  return files
}
