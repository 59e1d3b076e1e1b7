// Multi-document YAML text read into plain values, each able to name the source line of any path inside it.

import * as jsYaml from 'js-yaml'
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml'
import type { Severity } from './messages.ts'
import type { SpecPath } from './resource.ts'

/** A problem found in a text, before we know which file it came from. */
export interface LineMessage {
  readonly severity: Severity
  readonly line: number
  readonly message: string
}

export interface YamlDocument {
  /** 1-based line where the document's content starts. */
  readonly line: number
  /** The document as plain JavaScript values (maps become objects). */
  readonly value: unknown
  /** 1-based line of the node at `path`: the key's line for a map entry, the item's line for a list entry;
   *  when the path does not exist, the line of its nearest existing ancestor. */
  lineOf(path: SpecPath): number
}

export interface YamlParseResult {
  /** Documents that parsed cleanly and are not empty, in file order. */
  readonly documents: YamlDocument[]
  readonly messages: LineMessage[]
}

/** YAML 1.2 core types plus merge keys (`<<`), the same values the `yaml` package gives with `merge: true`. */
const fastSchema = jsYaml.CORE_SCHEMA.extend([
  // js-yaml exports its built-in types at run time; @types/js-yaml does not declare them.
  (jsYaml as unknown as { types: { merge: jsYaml.Type } }).types.merge,
])

/**
 * Parses multi-document YAML. Large configs (thousands of resources) take the fast path: js-yaml reads the
 * values about six times faster than the `yaml` package, and the position-keeping `yaml` parse runs only
 * when a line is asked for (an error or warning). Text that js-yaml rejects, or that uses anchors (whose
 * expansion the `yaml` package bounds), takes the exact path directly so every error has its line.
 */
export function parseYamlDocuments(text: string): YamlParseResult {
  if (anchor.test(text)) return parseWithPositions(text)
  let values: unknown[]
  try {
    values = jsYaml.loadAll(text, undefined, { schema: fastSchema })
  } catch {
    return parseWithPositions(text)
  }
  const starts = documentStartLines(text)
  const nonEmpty = values.filter((v) => v !== null && v !== undefined)
  if (starts.length !== values.length) return parseWithPositions(text)
  let exact: YamlParseResult | undefined
  const located = (): YamlParseResult => {
    exact ??= parseWithPositions(text)
    return exact
  }
  const documents: YamlDocument[] = []
  values.forEach((value, i) => {
    if (value === null || value === undefined) return
    const index = documents.length
    documents.push({
      line: starts[i],
      value,
      lineOf: (path) => located().documents[index]?.lineOf(path) ?? starts[i],
    })
  })
  return documents.length === nonEmpty.length ? { documents, messages: [] } : parseWithPositions(text)
}

/** An anchor (`&name`) anywhere a node may start. */
const anchor = /(^|[\s[{,:-])&[^\s,\]}]/m

/**
 * The first content line of every document in the stream (as js-yaml counts documents): a `---` line
 * starts a document, and the first line that is not blank, a comment or a directive is its start.
 */
function documentStartLines(text: string): number[] {
  const starts: number[] = []
  const lines = text.split('\n')
  let open = true
  let content = -1
  let any = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (
      line.startsWith('---') &&
      (line.length === 3 || line[3] === ' ' || line[3] === '\t' || line[3] === '\r')
    ) {
      if (any || !open) starts.push(content === -1 ? i + 1 : content)
      open = true
      any = true
      content = line.slice(3).trim() === '' || line.slice(3).trim().startsWith('#') ? -1 : i + 1
      continue
    }
    if (line.startsWith('...')) continue
    const trimmed = line.trim()
    if (content === -1 && trimmed !== '' && !trimmed.startsWith('#') && !trimmed.startsWith('%')) {
      content = i + 1
      any = true
    }
  }
  if (any) starts.push(content === -1 ? lines.length : content)
  return starts
}

/** The exact parse: the `yaml` package with line positions for every node. */
function parseWithPositions(text: string): YamlParseResult {
  const lineCounter = new LineCounter()
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line
  const documents: YamlDocument[] = []
  const messages: LineMessage[] = []

  for (const doc of parseAllDocuments(text, { lineCounter, prettyErrors: false, merge: true })) {
    for (const warning of doc.warnings) {
      messages.push({
        severity: 'warning',
        line: lineAt(warning.pos[0]),
        message: `YAML: ${warning.message}`,
      })
    }
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        messages.push({
          severity: 'error',
          line: lineAt(error.pos[0]),
          message: `invalid YAML: ${error.message}`,
        })
      }
      continue
    }
    const root = doc.contents
    if (root === null || (isScalar(root) && root.value === null)) continue
    const line = lineAt(root.range?.[0] ?? doc.range[0])
    let value: unknown
    try {
      value = doc.toJS({ maxAliasCount: 1000 })
    } catch (error) {
      messages.push({ severity: 'error', line, message: `invalid YAML: ${(error as Error).message}` })
      continue
    }
    documents.push({ line, value, lineOf: (path) => lineOfPath(root, path, line, lineAt) })
  }
  return { documents, messages }
}

function lineOfPath(
  root: Node,
  path: SpecPath,
  rootLine: number,
  lineAt: (offset: number) => number,
): number {
  let node: unknown = root
  let line = rootLine
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && isScalar(item.key) && String(item.key.value) === segment,
      )
      if (pair === undefined || !isScalar(pair.key)) return line
      line = lineOfNode(pair.key, line, lineAt)
      node = pair.value
    } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
      node = node.items[segment]
      line = lineOfNode(node, line, lineAt)
    } else {
      return line
    }
  }
  return line
}

function lineOfNode(node: unknown, fallback: number, lineAt: (offset: number) => number): number {
  if (node !== null && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
    return lineAt(node.range[0])
  }
  return fallback
}
