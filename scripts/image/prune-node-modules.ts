// Deletes from a production node_modules what Node never loads at run time: declarations, maps, docs, native sources, tests, and bundler-only builds.
//
// Usage (Dockerfile, stage `deps`, after `npm ci --omit=dev --ignore-scripts`): node prune-node-modules.ts <node_modules>
// Prints what it removed, in bytes, by rule. Node 24 runs this file as it is (type stripping).
// What counts as "bundler-only": a file that package.json names only for bundlers or browsers (`module`, `esnext`,
// `browser`, `unpkg`…, or an `exports` branch Node's conditions never reach), and the directory holding it when no
// file Node resolves lies inside that directory (e.g. OpenTelemetry's build/esm and build/esnext beside build/src).
// A file a program reads by path rather than by import (uPlot's browser bundle, served by the admin dashboard)
// is named in no bundler field and so is kept; the image test fetches it.

import { lstatSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs'
import { dirname, join, normalize, relative, sep } from 'node:path'

/** Files nothing loads at run time: type declarations, source maps, TypeScript sources, docs, and the C/C++/assembly sources of native addons (`--ignore-scripts` builds nothing). */
const deadFile =
  /\.(d\.ts|d\.mts|d\.cts|ts|mts|cts|map|md|markdown|c|cc|cpp|h|hh|hpp|S|asm|inc|def|gyp|gypi)$/

/** A package's own top-level directories that are never on its run-time path. */
const deadPackageDirectories = new Set([
  'test',
  'tests',
  '__tests__',
  'example',
  'examples',
  'benchmark',
  'benchmarks',
  'doc',
  'docs',
  '.github',
])

/**
 * Per-package leftovers no rule above can name (each checked: the package's Node entry requires nothing in them).
 * koffi: its install-time build tool and vendored headers; node-forge, pako: browser bundles of the
 * lib/ or src/ tree Node loads (node-forge's `flash` is a Flash socket policy file for browsers).
 */
const deadPackagePaths: Record<string, readonly string[]> = {
  koffi: ['cnoke.cjs', 'vendor', 'lib/native'],
  'node-forge': ['dist', 'flash'],
  pako: ['dist'],
}
const deadScopedPackageDirectory = /^musl_/

/** The conditions Node 24 matches in `exports`, for `import` and for `require`. */
const nodeConditions = {
  import: new Set(['node', 'import', 'module-sync', 'default']),
  require: new Set(['node', 'require', 'module-sync', 'default']),
}

/** package.json fields that name files only bundlers and browsers read. */
const bundlerFields = ['module', 'esnext', 'jsnext:main', 'unpkg', 'jsdelivr', 'umd:main', 'browser'] as const

type ExportsTarget =
  | string
  | null
  | readonly ExportsTarget[]
  | { readonly [condition: string]: ExportsTarget }

interface PackageJson {
  readonly main?: string
  readonly exports?: ExportsTarget
  readonly imports?: ExportsTarget
  readonly [field: string]: unknown
}

const removed = new Map<string, number>()

function remove(path: string, rule: string): void {
  removed.set(rule, (removed.get(rule) ?? 0) + sizeOf(path))
  rmSync(path, { recursive: true, force: true })
}

function sizeOf(path: string): number {
  const stat = lstatSync(path, { throwIfNoEntry: false })
  if (stat === undefined) return 0
  if (!stat.isDirectory()) return stat.size
  let total = 0
  for (const entry of readdirSync(path)) total += sizeOf(join(path, entry))
  return total
}

/** The files (or, for `*` patterns, directories) Node resolves for a package: `main` (index.js by default), and every `exports`/`imports` entry under Node's conditions. */
function nodeTargets(pkg: PackageJson): string[] {
  const targets = [pkg.main ?? 'index.js']
  const collect = (target: ExportsTarget, conditions: ReadonlySet<string>): boolean => {
    if (target === null) return false
    if (typeof target === 'string') {
      targets.push(target.includes('*') ? target.slice(0, target.indexOf('*')) : target)
      return true
    }
    if (Array.isArray(target)) return target.some((entry: ExportsTarget) => collect(entry, conditions))
    const branches = target as { readonly [condition: string]: ExportsTarget }
    const keys = Object.keys(branches)
    // A subpath map ({ ".": …, "./x": … }) rather than a conditions map: every subpath counts.
    if (keys.some((key) => key.startsWith('.') || key.startsWith('#'))) {
      for (const key of keys) collect(branches[key], conditions)
      return true
    }
    for (const key of keys) if (conditions.has(key) && collect(branches[key], conditions)) return true
    return false
  }
  for (const field of [pkg.exports, pkg.imports]) {
    if (field === undefined) continue
    collect(field, nodeConditions.import)
    collect(field, nodeConditions.require)
  }
  return targets.map((target) => normalize(target))
}

/** Every file a bundler field or a non-Node `exports` branch names. */
function bundlerTargets(pkg: PackageJson): string[] {
  const targets: string[] = []
  const strings = (value: unknown): void => {
    if (typeof value === 'string') targets.push(value)
    else if (Array.isArray(value)) value.forEach(strings)
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(strings)
  }
  for (const field of bundlerFields) strings(pkg[field])
  strings(pkg.exports)
  return targets
    .filter((target) => target.startsWith('./') || !target.startsWith('.'))
    .map((t) => normalize(t))
}

/**
 * Removes a package's bundler-only builds: the outermost directory holding a bundler-only file that lies outside
 * every directory holding a file Node resolves (build/esm beside build/src, browser/ beside dist/). Nothing inside
 * a Node entry's own directory goes: Node's files may require their neighbours (a browser/ platform folder, say).
 */
function pruneBundlerBuilds(packageDir: string, pkg: PackageJson): void {
  const keep = nodeTargets(pkg)
  // `./package.json` (often exported) is data, not code: it does not make the package root a code directory.
  const keptDirectories = keep
    .filter((target) => target !== 'package.json')
    .map((target) => (target.endsWith(sep) ? target.slice(0, -1) : dirname(target)))
  const within = (path: string, dir: string): boolean =>
    dir === '.' || path === dir || path.startsWith(`${dir}${sep}`)
  const isKept = (path: string): boolean =>
    keep.includes(path) || keptDirectories.some((dir) => within(path, dir) || within(dir, path))
  for (const target of bundlerTargets(pkg)) {
    if (target.includes('*') || target.startsWith('..') || isKept(target)) continue
    let outermost = target
    while (dirname(outermost) !== '.' && !isKept(dirname(outermost))) outermost = dirname(outermost)
    const path = join(packageDir, outermost)
    if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) remove(path, 'bundler-only builds')
  }
}

function prunePackage(packageDir: string, name: string): void {
  for (const entry of readdirSync(packageDir)) {
    if (deadPackageDirectories.has(entry) && lstatSync(join(packageDir, entry)).isDirectory())
      remove(join(packageDir, entry), 'tests, examples, docs')
  }
  for (const path of deadPackagePaths[name] ?? [])
    remove(join(packageDir, path), `${name}: install-time files`)
  if (name.startsWith('@koromix/'))
    for (const entry of readdirSync(packageDir))
      if (deadScopedPackageDirectory.test(entry)) remove(join(packageDir, entry), 'koffi: musl builds')
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as PackageJson
  pruneBundlerBuilds(packageDir, pkg)
}

/** Every package directory (scoped ones included, nested node_modules too) with its name. */
function* packages(nodeModules: string): Generator<[string, string]> {
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue
    const path = join(nodeModules, entry)
    if (entry.startsWith('@')) {
      for (const scoped of readdirSync(path))
        yield* packageAndNested(join(path, scoped), `${entry}/${scoped}`)
    } else yield* packageAndNested(path, entry)
  }
}

function* packageAndNested(path: string, name: string): Generator<[string, string]> {
  if (!lstatSync(path).isDirectory()) return
  yield [path, name]
  const nested = join(path, 'node_modules')
  if (lstatSync(nested, { throwIfNoEntry: false })?.isDirectory()) yield* packages(nested)
}

/** Deletes dead files under dir (the whole tree, after the per-package rules), then the directories left empty. */
function pruneFiles(dir: string): boolean {
  let empty = true
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (pruneFiles(path)) rmdirSync(path)
      else empty = false
    } else if (entry.isFile() && deadFile.test(entry.name))
      remove(path, 'declarations, maps, docs, native sources')
    else empty = false
  }
  return empty
}

const nodeModules = process.argv[2]
if (nodeModules === undefined) {
  console.error('usage: node prune-node-modules.ts <node_modules>')
  process.exit(2)
}
const before = sizeOf(nodeModules)
for (const [path, name] of packages(nodeModules)) prunePackage(path, name)
rmSync(join(nodeModules, '@types'), { recursive: true, force: true })
pruneFiles(nodeModules)
for (const [rule, bytes] of removed)
  console.log(`prune-node-modules: ${rule}: ${(bytes / 1e6).toFixed(2)} MB`)
console.log(
  `prune-node-modules: ${relative(process.cwd(), nodeModules) || '.'}: ${(before / 1e6).toFixed(1)} → ${(sizeOf(nodeModules) / 1e6).toFixed(1)} MB`,
)
