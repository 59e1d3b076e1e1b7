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
  const { results, messages } = readYamlDocuments(text, (document) => document)
  return { documents: results, messages }
}

/**
 * Parses multi-document YAML as `parseYamlDocuments` does, handing each document to `read` as soon as it
 * is parsed: on the fast path one document's plain values are garbage before the next is read, so a
 * big file never holds all of them at once. When the exact path is needed after all, the results read
 * so far are dropped and every document is read again from the exact parse.
 */
export function readYamlDocuments<T>(
  text: string,
  read: (document: YamlDocument) => T,
  source: TextSource = keptText(text),
): { readonly results: T[]; readonly messages: LineMessage[] } {
  const exactly = (): { results: T[]; messages: LineMessage[] } => {
    const exact = parseWithPositions(text)
    return { results: exact.documents.map(read), messages: exact.messages }
  }
  if (anchor.test(text)) return exactly()
  const lineIn = lazyLocator(source)
  const results: T[] = []
  let index = 0
  for (const chunk of documentChunks(text)) {
    let value: unknown
    try {
      value = jsYaml.load(text.slice(chunk.from, chunk.to), { schema: fastSchema })
    } catch {
      return exactly()
    }
    if (value === null || value === undefined) continue
    results.push(read(fastDocument(value, chunk.line, index++, lineIn)))
  }
  return { results, messages: [] }
}

/**
 * The text again, for lines asked for later (undefined when it is no longer available, e.g. its file
 * changed): the fast path's documents keep this, not necessarily the text.
 */
export type TextSource = () => string | undefined

/** The default source: the text itself, kept in memory. Its own scope, so it holds nothing else. */
function keptText(text: string): TextSource {
  return () => text
}

type Locator = (index: number, path: SpecPath, fallback: number) => number

/**
 * Lines for fast-path documents, from the exact parse made on the first question; without the text,
 * each document's start line. Its own scope, so the documents' `lineOf` closures hold only the source.
 */
function lazyLocator(source: TextSource): Locator {
  let exact: YamlParseResult | undefined
  let unavailable = false
  return (index, path, fallback) => {
    if (exact === undefined && !unavailable) {
      const text = source()
      if (text === undefined) unavailable = true
      else exact = parseWithPositions(text)
    }
    return exact?.documents[index]?.lineOf(path) ?? fallback
  }
}

/** A fast-path document; its `lineOf` holds the shared lazy locator, not the document's values. */
function fastDocument(value: unknown, line: number, index: number, lineIn: Locator): YamlDocument {
  return { line, value, lineOf: (path) => lineIn(index, path, line) }
}

/** An anchor (`&name`) anywhere a node may start. */
const anchor = /(^|[\s[{,:-])&[^\s,\]}]/m

interface DocumentChunk {
  /** The first content line of the document (1-based), as js-yaml counts documents. */
  readonly line: number
  /** Character offsets of the document's text, its `---` marker included. */
  readonly from: number
  readonly to: number
}

/**
 * The documents of a stream: a `---` line starts a document, and the first line that is not blank, a
 * comment or a directive is its start line. Comments before the first marker belong to the first document.
 */
function documentChunks(text: string): DocumentChunk[] {
  const chunks: DocumentChunk[] = []
  let content = -1
  let any = false
  let from = 0
  let lineNumber = 0
  for (let offset = 0; offset < text.length || (offset === text.length && lineNumber === 0); ) {
    const newline = text.indexOf('\n', offset)
    const end = newline === -1 ? text.length : newline
    const line = text.slice(offset, end)
    lineNumber++
    if (
      line.startsWith('---') &&
      (line.length === 3 || line[3] === ' ' || line[3] === '\t' || line[3] === '\r')
    ) {
      if (any) {
        chunks.push({ line: content === -1 ? lineNumber : content, from, to: offset })
        from = offset
      }
      any = true
      const rest = line.slice(3).trim()
      content = rest === '' || rest.startsWith('#') ? -1 : lineNumber
    } else if (!line.startsWith('...')) {
      const trimmed = line.trim()
      if (content === -1 && trimmed !== '' && !trimmed.startsWith('#') && !trimmed.startsWith('%')) {
        content = lineNumber
        any = true
      }
    }
    if (newline === -1) break
    offset = newline + 1
  }
  // A text ending in a newline has one more (empty) line, which js-yaml counts as the last one.
  const lines = text.endsWith('\n') ? lineNumber + 1 : lineNumber
  if (any) chunks.push({ line: content === -1 ? lines : content, from, to: text.length })
  return chunks
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
