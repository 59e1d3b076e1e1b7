import { describe, expect, it } from 'vitest'
import { parseYamlDocuments } from './yaml-document.ts'

const TEXT = `# leading comment
---
kind: A
spec:
  nested:
    deep: 1
  list:
  - name: first
  - second
  empty:
---
# a document with only a comment
---
kind: B
`

describe('parseYamlDocuments', () => {
  it('returns every non-empty document with its first line', () => {
    const { documents, messages } = parseYamlDocuments(TEXT)
    expect(messages).toEqual([])
    expect(documents.map((d) => [d.line, d.value])).toEqual([
      [3, { kind: 'A', spec: { nested: { deep: 1 }, list: [{ name: 'first' }, 'second'], empty: null } }],
      [14, { kind: 'B' }],
    ])
  })

  it('finds the line of a key, of a list item, and of the nearest ancestor of a missing path', () => {
    const [doc] = parseYamlDocuments(TEXT).documents
    expect(doc.lineOf([])).toBe(3)
    expect(doc.lineOf(['spec'])).toBe(4)
    expect(doc.lineOf(['spec', 'nested'])).toBe(5)
    expect(doc.lineOf(['spec', 'nested', 'deep'])).toBe(6)
    expect(doc.lineOf(['spec', 'list', 1])).toBe(9)
    expect(doc.lineOf(['spec', 'list', 0, 'missing'])).toBe(8)
    expect(doc.lineOf(['spec', 'list', 7])).toBe(7)
    expect(doc.lineOf(['spec', 'empty', 'below'])).toBe(10)
    expect(doc.lineOf(['nothing', 'here'])).toBe(3)
  })

  it('resolves anchors, aliases and merge keys', () => {
    const { documents } = parseYamlDocuments(
      'base: &labels {app: a}\nsubset:\n  <<: *labels\n  version: v1\n',
    )
    expect(documents[0].value).toEqual({ base: { app: 'a' }, subset: { app: 'a', version: 'v1' } })
  })

  it('reports syntax errors with their line and drops that document only', () => {
    const { documents, messages } = parseYamlDocuments('a: 1\n---\nb: [1, 2\nc: 3\n---\nd: 4\n')
    expect(documents.map((d) => d.value)).toEqual([{ a: 1 }, { d: 4 }])
    expect(messages).toEqual([
      {
        severity: 'error',
        line: 4,
        message:
          'invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
      },
    ])
  })

  it('reports duplicate keys at the second key', () => {
    const { messages } = parseYamlDocuments('a: 1\nb: 2\na: 3\n')
    expect(messages).toEqual([
      { severity: 'error', line: 3, message: 'invalid YAML: Map keys must be unique' },
    ])
  })

  it('reports an alias to a missing anchor', () => {
    const { documents, messages } = parseYamlDocuments('a: 1\nb: *missing\n')
    expect(documents).toEqual([])
    expect(messages).toHaveLength(1)
    expect(messages[0].line).toBe(1)
    expect(messages[0].message).toMatch(/^invalid YAML: .*missing/)
  })
})
