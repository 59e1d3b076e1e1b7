// Multi-document YAML text read into plain values, each able to name the source line of any path inside it.

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

export function parseYamlDocuments(text: string): YamlParseResult {
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
