// Which modules this thread has loaded: node's built-ins, CommonJS files, and (when recording) every resolved URL, for admin GET /modules.

import { createRequire, registerHooks } from 'node:module'
import { isAbsolute } from 'node:path'
import { pathToFileURL } from 'node:url'

/** Every module URL resolved since recordModuleLoads() ran (ES modules and CommonJS alike); undefined before. */
let recorded: Set<string> | undefined

/**
 * Records every module this thread resolves from now on (node's module.registerHooks). main.ts calls it
 * first when OUTRIGGER_RECORD_MODULES=1, before the proxy's own modules load, so GET /modules lists ES
 * modules too; a debug aid, off by default (it adds a hook to every import).
 */
export function recordModuleLoads(): void {
  if (recorded !== undefined) return
  const urls = new Set<string>()
  recorded = urls
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context)
      urls.add(resolved.url)
      return resolved
    },
  })
}

/** The npm package a module's path or URL lies in (`@scope/name` or `name`), or undefined outside node_modules. */
export function packageOf(location: string): string | undefined {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(location)
  return match?.[1]
}

export interface LoadedModules {
  /** Node's public built-in modules this thread loaded (`http2`, `tls`, …) and its bundled dependencies (`internal/deps/undici/undici`, …); other `internal/` ones left out. */
  readonly builtins: string[]
  /** Files loaded from node_modules, counted by package. */
  readonly packages: Record<string, number>
  /** Every module's URL, when recording (OUTRIGGER_RECORD_MODULES=1); otherwise only CommonJS files'. */
  readonly modules: string[]
  readonly recorded: boolean
}

/** What this thread has loaded so far. */
export function loadedModules(): LoadedModules {
  const builtins = new Set<string>()
  // node's list of what it loaded: `NativeModule http2`, `Internal Binding fs`, … (undocumented, stable since v0.x).
  const loadList = (process as unknown as { moduleLoadList?: readonly string[] }).moduleLoadList ?? []
  for (const entry of loadList) {
    if (!entry.startsWith('NativeModule ')) continue
    const name = entry.slice('NativeModule '.length)
    if (!name.startsWith('internal/') || name.startsWith('internal/deps/')) builtins.add(name)
  }
  // CommonJS files by URL, as the hook records them, so a file is listed once.
  const modules = new Set<string>()
  for (const path of Object.keys(createRequire(import.meta.url).cache))
    modules.add(isAbsolute(path) ? pathToFileURL(path).href : path)
  for (const url of recorded ?? []) {
    if (url.startsWith('node:')) builtins.add(url.slice('node:'.length))
    else modules.add(url)
  }
  const packages: Record<string, number> = {}
  for (const module of modules) {
    const name = packageOf(module)
    if (name !== undefined) packages[name] = (packages[name] ?? 0) + 1
  }
  return {
    builtins: [...builtins].sort(),
    packages,
    modules: [...modules].sort(),
    recorded: recorded !== undefined,
  }
}
