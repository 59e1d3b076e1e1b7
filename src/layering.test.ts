// The import check: every relative import in src follows the layer edges of docs/ARCHITECTURE.md, and no files import each other in a cycle.

import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const srcDir = dirname(fileURLToPath(import.meta.url))

/** Folders (or files) of src and the layer each belongs to; the first prefix that matches wins. */
const layerOf: readonly (readonly [prefix: string, layer: string])[] = [
  ['main.ts', 'cli'],
  ['cli/', 'cli'],
  ['admin/', 'admin'],
  ['proxy-runtime.ts', 'runtime'],
  ['runtime/', 'runtime'],
  ['listener/', 'listener'],
  ['http/filters/', 'filters'],
  ['http/', 'http'],
  ['router/', 'router'],
  ['tcp/', 'tcp'],
  ['upstream/', 'upstream'],
  ['config/', 'config'],
  ['bootstrap/', 'config'],
  ['route/', 'route'],
  ['tls/', 'tls'],
  ['telemetry/', 'telemetry'],
  ['protocol/', 'protocol'],
]

/**
 * The allowed edges: a layer may import its own files and the layers listed here, nothing else. The same
 * table is in docs/ARCHITECTURE.md; a change to one is a change to both.
 */
const mayImport: Readonly<Record<string, readonly string[]>> = {
  cli: ['admin', 'runtime', 'config', 'telemetry'],
  admin: ['runtime', 'upstream', 'tcp', 'route', 'config', 'telemetry'],
  runtime: ['listener', 'filters', 'router', 'http', 'tcp', 'upstream', 'config', 'telemetry'],
  listener: ['http', 'tcp', 'tls', 'config', 'telemetry', 'protocol'],
  filters: ['http', 'route', 'config', 'telemetry', 'protocol'],
  router: ['http', 'tcp', 'upstream', 'route', 'config', 'telemetry', 'protocol'],
  http: ['route', 'config', 'telemetry', 'protocol'],
  tcp: ['upstream', 'route', 'config', 'telemetry', 'protocol'],
  upstream: ['config', 'telemetry', 'protocol'],
  config: ['route', 'tls', 'telemetry', 'protocol'],
  route: ['protocol'],
  tls: ['telemetry'],
  telemetry: [],
  protocol: [],
}

function layer(file: string): string {
  for (const [prefix, name] of layerOf) if (file === prefix || file.startsWith(prefix)) return name
  throw new Error(`src/${file} is in no layer: add its folder to layerOf (and to docs/ARCHITECTURE.md)`)
}

/** Every non-test .ts file under src, as paths relative to src. */
function sourceFiles(dir = srcDir): string[] {
  const files: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...sourceFiles(path))
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts'))
      files.push(relative(srcDir, path))
  }
  return files.sort()
}

/** The src files a file imports: static `import` and `export … from`, `import type` included. */
function relativeImports(file: string): string[] {
  const text = readFileSync(join(srcDir, file), 'utf8')
  const info = ts.preProcessFile(text, true, true)
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((name) => name.startsWith('./') || name.startsWith('../'))
    .map((name) => relative(srcDir, resolve(srcDir, dirname(file), name)))
}

/** The graph's cycles: each strongly connected component of more than one file (or a file importing itself). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  let next = 0
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop() as string
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || graph.get(v)?.includes(v)) found.push(component.sort())
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/** One path around a cycle, for the report: `a.ts -> b.ts -> a.ts`. */
function cyclePath(component: readonly string[], graph: ReadonlyMap<string, readonly string[]>): string {
  const members = new Set(component)
  const path = [component[0]]
  const seen = new Set(path)
  for (;;) {
    const from = path[path.length - 1]
    const to = (graph.get(from) ?? []).find((f) => members.has(f) && (!seen.has(f) || f === path[0]))
    if (to === undefined || to === path[0]) return [...path, path[0]].join(' -> ')
    path.push(to)
    seen.add(to)
  }
}

const files = sourceFiles()
const graph = new Map(files.map((f) => [f, relativeImports(f)] as const))

describe('layering (docs/ARCHITECTURE.md)', () => {
  it('maps every source file to a layer, and every layer has a row of allowed edges', () => {
    for (const f of files) expect(mayImport[layer(f)], `layer of src/${f}`).toBeDefined()
  })

  it('every import follows an allowed layer edge', () => {
    const violations: string[] = []
    for (const [from, imports] of graph) {
      const fromLayer = layer(from)
      for (const to of imports) {
        const toLayer = layer(to)
        if (toLayer !== fromLayer && !mayImport[fromLayer].includes(toLayer))
          violations.push(`src/${from} (${fromLayer}) imports src/${to} (${toLayer})`)
      }
    }
    expect(violations).toEqual([])
  })

  it('no files import each other in a cycle', () => {
    expect(cycles(graph).map((c) => cyclePath(c, graph))).toEqual([])
  })

  it('the check reads imports of every form and finds a cycle when there is one', () => {
    const text = [
      "import { a } from './a.ts'",
      "import type { B } from '../b.ts'",
      "export { c } from './c.ts'",
      'import {\n  d,\n  type E,\n} from "./d.ts"',
      "import './side-effect.ts'",
      "import { readFile } from 'node:fs'",
    ].join('\n')
    const names = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName)
    expect(names).toEqual(['./a.ts', '../b.ts', './c.ts', './d.ts', './side-effect.ts', 'node:fs'])
    const looped = new Map([
      ['x.ts', ['y.ts']],
      ['y.ts', ['z.ts']],
      ['z.ts', ['x.ts']],
      ['w.ts', ['x.ts']],
    ])
    expect(cycles(looped).map((c) => cyclePath(c, looped))).toEqual(['x.ts -> y.ts -> z.ts -> x.ts'])
  })
})
