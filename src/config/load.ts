// Loads Istio resources from files and directories: every document parsed, validated and checked for duplicates.

import { readFile } from 'node:fs/promises'
import { expandConfigPaths } from './config-files.ts'
import { fingerprintOf, rereadIfUnchanged } from './file-text.ts'
import { flat } from './flat-string.ts'
import type { ConfigMessage } from './messages.ts'
import { parseResources } from './parse-resources.ts'
import type { Resource } from './resource.ts'

export interface LoadResult {
  /** Valid resources of the supported kinds, in file order; a document with errors contributes none. */
  readonly resources: Resource[]
  /** Errors and warnings, each with its file and line; the config is usable only without errors. */
  readonly messages: ConfigMessage[]
  /** Every file read (or attempted), for watching. */
  readonly files: string[]
}

/** Reads `paths` (files or directories); resources without metadata.namespace get `defaultNamespace`. */
export async function loadResources(paths: readonly string[], defaultNamespace: string): Promise<LoadResult> {
  const expanded = await expandConfigPaths(paths)
  const messages: ConfigMessage[] = [...expanded.messages]
  const resources: Resource[] = []
  const firstSeen = new Map<string, Resource>()

  for (const file of expanded.files) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      messages.push({ severity: 'error', file, line: 0, message: `cannot read: ${(error as Error).message}` })
      continue
    }
    // The resources keep a way to read the text again, not the text: it is garbage once parsed.
    const source = rereadIfUnchanged(file, fingerprintOf(text))
    const parsed = parseResources(text, file, defaultNamespace, source)
    messages.push(...parsed.messages)
    for (const resource of parsed.resources) {
      const key = flat(resource.kind, '/', resource.namespace, '/', resource.name)
      const first = firstSeen.get(key)
      if (first !== undefined) {
        messages.push({
          severity: 'error',
          file,
          line: resource.source.line,
          message: `duplicate ${resource.kind} ${resource.namespace}/${resource.name} (first defined at ${first.source.file}:${first.source.line})`,
        })
        continue
      }
      firstSeen.set(key, resource)
      resources.push(resource)
    }
  }
  return { resources, messages, files: expanded.files }
}
