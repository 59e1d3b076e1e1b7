// package.json stays honest: the proxy imports only runtime dependencies, and every package listed is used or waits for a named feature.

import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { servedPackages } from '../src/admin/dashboard-files.ts'
import { repoRoot } from './harness/proxy-process.ts'

interface PackageJson {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as PackageJson

/** Runtime dependencies no module imports yet, each with the feature that will. */
const reservedDependencies: Record<string, string> = {}

/** Runtime dependencies admin serves to a browser as files (the dashboard's uPlot), read from node_modules, not imported. */
const servedDependencies = new Set(servedPackages)

/** Development packages used as tools rather than imported. */
const toolPackages = new Set(['@biomejs/biome', 'typescript', 'node'])

function typeScriptFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name))
}

/** The package names `file` imports (bare specifiers; `node:` built-ins left out). */
function importedPackages(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specifiers = [...text.matchAll(/(?:from|import\()\s*'([^'.][^']*)'/g)].map((m) => m[1])
  return specifiers
    .filter((specifier) => !specifier.startsWith('node:'))
    .map((specifier) =>
      specifier
        .split('/')
        .slice(0, specifier.startsWith('@') ? 2 : 1)
        .join('/'),
    )
}

function importsBy(files: readonly string[]): Map<string, string[]> {
  const users = new Map<string, string[]>()
  for (const file of files) {
    for (const name of importedPackages(file)) {
      users.set(name, [...(users.get(name) ?? []), relative(repoRoot, file)])
    }
  }
  return users
}

const sourceFiles = typeScriptFiles(join(repoRoot, 'src'))
const proxyImports = importsBy(sourceFiles.filter((file) => !file.endsWith('.test.ts')))
const allImports = importsBy([
  ...sourceFiles,
  ...typeScriptFiles(join(repoRoot, 'test')),
  ...typeScriptFiles(join(repoRoot, 'bench')),
  join(repoRoot, 'vitest.config.ts'),
])

describe('package.json', () => {
  it('lists every package the proxy imports as a runtime dependency (the image installs no devDependencies)', () => {
    const missing = [...proxyImports.keys()].filter((name) => !(name in pkg.dependencies))
    expect(missing.map((name) => `${name} (${proxyImports.get(name)?.join(', ')})`)).toEqual([])
  })

  it('has no runtime dependency that the proxy does not import, unless a feature not built yet waits for it', () => {
    const unused = Object.keys(pkg.dependencies).filter(
      (name) => !proxyImports.has(name) && !servedDependencies.has(name) && !(name in reservedDependencies),
    )
    expect(unused).toEqual([])
    const nowImported = Object.keys(reservedDependencies).filter((name) => proxyImports.has(name))
    expect(nowImported, 'imported now: take them off the reserved list').toEqual([])
  })

  it('lists every package admin serves as a file as a runtime dependency (the image keeps production node_modules)', () => {
    const missing = [...servedDependencies].filter((name) => !(name in pkg.dependencies))
    expect(missing).toEqual([])
  })

  it('has no development package that neither tests, benchmarks nor tooling use', () => {
    const unused = Object.keys(pkg.devDependencies).filter(
      (name) => !allImports.has(name) && !toolPackages.has(name) && !name.startsWith('@types/'),
    )
    expect(unused).toEqual([])
  })
})
