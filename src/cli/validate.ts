// `outrigger validate <bootstrap.yaml | resource files or dirs…>`: print `file:line: reason` lines; exit 1 on errors.

import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { loadBootstrap } from '../bootstrap/load.ts'
import { compileModel } from '../config/compile.ts'
import { loadResources } from '../config/load.ts'
import { ConfigError, type ConfigMessage, formatMessage } from '../config/messages.ts'

/** A bootstrap is a YAML mapping without `kind` (Istio resources always have one). */
async function isBootstrap(path: string): Promise<boolean> {
  try {
    const doc: unknown = parse(await readFile(path, 'utf8'))
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && !('kind' in doc)
  } catch {
    return false
  }
}

export async function validate(
  paths: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const messages: ConfigMessage[] = []
  let ok = true
  for (const path of paths) {
    if (path.endsWith('.yaml') || path.endsWith('.yml') ? await isBootstrap(path) : false) {
      try {
        const bootstrap = await loadBootstrap(path)
        messages.push(...(bootstrap.warnings ?? []))
        const loaded = await loadResources(bootstrap.resources, bootstrap.node.namespace)
        messages.push(...loaded.messages)
        if (loaded.messages.every((m) => m.severity !== 'error')) {
          const model = compileModel({
            bootstrap,
            resources: loaded.resources,
            files: loaded.files,
            warnings: [],
            version: 0,
          })
          messages.push(...model.warnings)
        }
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err
        messages.push(...err.messages)
      }
      continue
    }
    const loaded = await loadResources([path], 'default')
    messages.push(...loaded.messages)
  }
  for (const m of messages) {
    if (m.severity === 'error') ok = false
    out.write(`${formatMessage(m)}\n`)
  }
  if (ok) out.write(`valid: ${paths.join(' ')}\n`)
  return ok ? 0 : 1
}
