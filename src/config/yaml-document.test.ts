import { describe, expect, it } from 'vitest'
import { isScalar, LineCounter, parseAllDocuments } from 'yaml'
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

describe('the fast path agrees with the exact parse', () => {
  const samples = [
    'a: 1\n',
    '# leading comment\n\na: 1\n---\nb: 2\n',
    '---\na: 1\n---\n# only a comment\n---\n\n\nc: [1, 2]\n...\n',
    '--- # comment on the marker\nx: {y: z}\n---\n---\nlast: true\n---\n',
    'base: &b {k: v}\nuse: {<<: *b, extra: 1}\n',
    'list:\n  - name: a\n    port: 80\n  - name: b\n    port: 0x50\n',
  ]
  it.each(samples)('same documents, start lines and values for %j', (text) => {
    const fast = parseYamlDocuments(text)
    const lineCounter = new LineCounter()
    const exact = parseAllDocuments(text, { lineCounter, merge: true })
      .filter((d) => d.contents !== null && !(isScalar(d.contents) && d.contents.value === null))
      .map((d) => ({ line: lineCounter.linePos(d.contents?.range?.[0] ?? 0).line, value: d.toJS() }))
    expect(fast.messages).toEqual([])
    expect(fast.documents.map((d) => ({ line: d.line, value: d.value }))).toEqual(exact)
  })

  it('finds lines lazily in big multi-document files', () => {
    const text = Array.from(
      { length: 200 },
      (_, i) => `---\nkind: K\nmetadata:\n  name: n${i}\nspec:\n  x: ${i}\n`,
    ).join('')
    const { documents } = parseYamlDocuments(text)
    expect(documents).toHaveLength(200)
    expect(documents[150].line).toBe(150 * 6 + 2)
    expect(documents[150].lineOf(['spec', 'x'])).toBe(150 * 6 + 6)
    expect(documents[150].lineOf(['spec', 'missing'])).toBe(150 * 6 + 5)
  })

  it('reports YAML errors with their lines (the exact path)', () => {
    const { documents, messages } = parseYamlDocuments('a: 1\n---\nb: [unclosed\n')
    expect(documents.map((d) => d.value)).toEqual([{ a: 1 }])
    expect(messages[0].severity).toBe('error')
    expect(messages[0].message).toMatch(/invalid YAML/)
    expect(messages[0].line).toBeGreaterThanOrEqual(3)
  })
})
