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
  ['capture/', 'capture'],
  ['inject/', 'inject'],
  ['admin/', 'admin'],
  ['proxy-runtime.ts', 'runtime'],
  ['runtime/', 'runtime'],
  ['dns/', 'dns'],
  ['overload/', 'overload'],
  ['live/', 'live'],
  ['listener/', 'listener'],
  ['http/filters/', 'filters'],
  ['http/', 'http'],
  ['router/', 'router'],
  ['tcp/', 'tcp'],
  ['upstream/', 'upstream'],
  ['config/', 'config'],
  ['bootstrap/', 'config'],
  ['route/', 'route'],
  ['authz/', 'authz'],
  ['tls/', 'tls'],
  ['ca/', 'ca'],
  ['files/', 'files'],
  ['telemetry/', 'telemetry'],
  ['protocol/', 'protocol'],
  ['shared/', 'shared'],
]

/**
 * The allowed edges: a layer may import its own files and the layers listed here, nothing else. The same
 * table is in docs/ARCHITECTURE.md; a change to one is a change to both.
 */
const mayImport: Readonly<Record<string, readonly string[]>> = {
  cli: [
    'capture',
    'inject',
    'admin',
    'runtime',
    'overload',
    'live',
    'config',
    'ca',
    'authz',
    'telemetry',
    'shared',
  ],
  capture: ['telemetry'],
  inject: ['config', 'telemetry'],
  admin: [
    'runtime',
    'live',
    'upstream',
    'tcp',
    'route',
    'config',
    'authz',
    'telemetry',
    'protocol',
    'shared',
  ],
  runtime: [
    'dns',
    'overload',
    'live',
    'listener',
    'filters',
    'router',
    'http',
    'tcp',
    'upstream',
    'config',
    'tls',
    'files',
    'telemetry',
    'shared',
  ],
  dns: ['config', 'telemetry', 'protocol', 'shared'],
  overload: ['telemetry', 'protocol', 'shared'],
  live: ['telemetry', 'protocol', 'shared'],
  listener: ['http', 'tcp', 'tls', 'config', 'telemetry', 'protocol', 'shared'],
  filters: ['http', 'route', 'config', 'authz', 'telemetry', 'protocol', 'shared'],
  router: ['http', 'tcp', 'upstream', 'route', 'config', 'telemetry', 'protocol'],
  http: ['route', 'config', 'telemetry', 'protocol'],
  tcp: ['upstream', 'route', 'config', 'authz', 'telemetry', 'protocol'],
  upstream: ['config', 'tls', 'telemetry', 'protocol', 'shared'],
  config: ['route', 'authz', 'tls', 'files', 'telemetry', 'protocol'],
  route: ['protocol'],
  authz: ['protocol'],
  tls: ['ca', 'files', 'telemetry'],
  ca: ['telemetry'],
  files: ['telemetry'],
  telemetry: ['protocol', 'shared'],
  protocol: [],
  shared: [],
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

interface Import {
  /** The imported file, relative to src. */
  readonly file: string
  /** `import type` / `export type`, or every name imported with `type`: erased at compile time. */
  readonly typeOnly: boolean
}

/** The module specifiers of a source text's static `import` and `export … from` declarations. */
function importsOf(text: string): { specifier: string; typeOnly: boolean }[] {
  const source = ts.createSourceFile('x.ts', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const found: { specifier: string; typeOnly: boolean }[] = []
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      const clause = statement.importClause
      const bindings = clause?.namedBindings
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            bindings !== undefined &&
            ts.isNamedImports(bindings) &&
            bindings.elements.length > 0 &&
            bindings.elements.every((e) => e.isTypeOnly)))
      found.push({ specifier: statement.moduleSpecifier.text, typeOnly })
    } else if (
      ts.isExportDeclaration(statement) &&
      statement.moduleSpecifier !== undefined &&
      ts.isStringLiteral(statement.moduleSpecifier)
    ) {
      const clause = statement.exportClause
      const typeOnly =
        statement.isTypeOnly ||
        (clause !== undefined &&
          ts.isNamedExports(clause) &&
          clause.elements.length > 0 &&
          clause.elements.every((e) => e.isTypeOnly))
      found.push({ specifier: statement.moduleSpecifier.text, typeOnly })
    }
  }
  return found
}

/** The src files a file imports: static `import` and `export … from`, `import type` included. */
function relativeImports(file: string): Import[] {
  return importsOf(readFileSync(join(srcDir, file), 'utf8'))
    .filter((i) => i.specifier.startsWith('./') || i.specifier.startsWith('../'))
    .map((i) => ({
      file: relative(srcDir, resolve(srcDir, dirname(file), i.specifier)),
      typeOnly: i.typeOnly,
    }))
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

/**
 * Cycles allowed because every import in them is type-only (erased at compile time, so no module waits on
 * another to load): mutually recursive types. A filter's phases take the RequestContext; the request
 * reaches its listener's filters.
 */
const allowedTypeCycles: readonly (readonly string[])[] = [
  ['http/filter.ts', 'http/http-listener.ts', 'http/request-context.ts'],
]

const files = sourceFiles()
const imports = new Map(files.map((f) => [f, relativeImports(f)] as const))
const graph = new Map([...imports].map(([f, list]) => [f, list.map((i) => i.file)] as const))
const valueGraph = new Map(
  [...imports].map(([f, list]) => [f, list.filter((i) => !i.typeOnly).map((i) => i.file)] as const),
)

describe('layering (docs/ARCHITECTURE.md)', () => {
  it('maps every source file to a layer, and every layer has a row of allowed edges', () => {
    for (const f of files) expect(mayImport[layer(f)], `layer of src/${f}`).toBeDefined()
  })

  it('every import follows an allowed layer edge', () => {
    const violations: string[] = []
    for (const [from, list] of graph) {
      const fromLayer = layer(from)
      for (const to of list) {
        const toLayer = layer(to)
        if (toLayer !== fromLayer && !mayImport[fromLayer].includes(toLayer))
          violations.push(`src/${from} (${fromLayer}) imports src/${to} (${toLayer})`)
      }
    }
    expect(violations).toEqual([])
  })

  it('no files import each other in a cycle', () => {
    expect(cycles(valueGraph).map((c) => cyclePath(c, valueGraph))).toEqual([])
    const allowed = new Set(allowedTypeCycles.map((c) => [...c].sort().join(' ')))
    const typeCycles = cycles(graph).filter((c) => !allowed.has(c.join(' ')))
    expect(typeCycles.map((c) => `${c.length} files: ${cyclePath(c, graph)}`)).toEqual([])
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
    expect(importsOf(text)).toEqual([
      { specifier: './a.ts', typeOnly: false },
      { specifier: '../b.ts', typeOnly: true },
      { specifier: './c.ts', typeOnly: false },
      { specifier: './d.ts', typeOnly: false },
      { specifier: './side-effect.ts', typeOnly: false },
      { specifier: 'node:fs', typeOnly: false },
    ])
    expect(importsOf("import { type F, type G } from './f.ts'\nexport type { H } from './h.ts'")).toEqual([
      { specifier: './f.ts', typeOnly: true },
      { specifier: './h.ts', typeOnly: true },
    ])
    const looped = new Map([
      ['x.ts', ['y.ts']],
      ['y.ts', ['z.ts']],
      ['z.ts', ['x.ts']],
      ['w.ts', ['x.ts']],
    ])
    expect(cycles(looped).map((c) => cyclePath(c, looped))).toEqual(['x.ts -> y.ts -> z.ts -> x.ts'])
    expect(cycles(new Map([['s.ts', ['s.ts']]]))).toEqual([['s.ts']])
  })
})
