import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadResources } from './load.ts'
import { formatMessage } from './messages.ts'

function serviceEntry(name: string, namespace?: string): string {
  const ns = namespace === undefined ? '' : `\n  namespace: ${namespace}`
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}${ns}
spec:
  hosts: [${name}.example.com]
`
}

describe('loadResources', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-load-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('reads every YAML and JSON file below a directory, sorted, and skips other and hidden files', async () => {
    await mkdir(join(dir, 'b/nested'), { recursive: true })
    await mkdir(join(dir, '.hidden'))
    await writeFile(join(dir, 'b/nested/c.yml'), serviceEntry('c'))
    await writeFile(join(dir, 'b/a.yaml'), serviceEntry('b'))
    await writeFile(join(dir, 'a.json'), JSON.stringify({ ...JSON_ENTRY, metadata: { name: 'a' } }))
    await writeFile(join(dir, 'notes.txt'), 'not: config')
    await writeFile(join(dir, '.hidden/x.yaml'), serviceEntry('hidden'))

    const result = await loadResources([dir], 'default')
    expect(result.messages).toEqual([])
    expect(result.files).toEqual([join(dir, 'a.json'), join(dir, 'b/a.yaml'), join(dir, 'b/nested/c.yml')])
    expect(result.resources.map((r) => r.name)).toEqual(['a', 'b', 'c'])
  })

  it('reads multi-document files in order, giving each resource its namespace', async () => {
    const file = join(dir, 'multi.yaml')
    await writeFile(file, `${serviceEntry('one')}---\n${serviceEntry('two', 'shop')}`)
    const result = await loadResources([file], 'bookinfo')
    expect(result.resources.map((r) => [r.namespace, r.name, r.source.line])).toEqual([
      ['bookinfo', 'one', 1],
      ['shop', 'two', 8],
    ])
  })

  it('reports a missing path at line 0 and still reads the others', async () => {
    const file = join(dir, 'se.yaml')
    await writeFile(file, serviceEntry('one'))
    const missing = join(dir, 'missing.yaml')
    const result = await loadResources([missing, file], 'default')
    expect(result.messages.map(formatMessage)).toEqual([`${missing}:0: no such file`])
    expect(result.resources).toHaveLength(1)
  })

  it('reports a resource defined twice at the second, naming the first', async () => {
    await writeFile(join(dir, 'a.yaml'), serviceEntry('dup'))
    await writeFile(join(dir, 'b.yaml'), `${serviceEntry('other')}---\n${serviceEntry('dup', 'default')}`)
    const result = await loadResources([dir], 'default')
    expect(result.messages.map(formatMessage)).toEqual([
      `${join(dir, 'b.yaml')}:8: duplicate ServiceEntry default/dup (first defined at ${join(dir, 'a.yaml')}:1)`,
    ])
    expect(result.resources.map((r) => r.name)).toEqual(['dup', 'other'])
  })

  it('allows one name in two namespaces, or for two kinds', async () => {
    const file = join(dir, 'a.yaml')
    await writeFile(
      file,
      `${serviceEntry('x')}---\n${serviceEntry('x', 'other')}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec: {host: x.example.com}\n`,
    )
    const result = await loadResources([file], 'default')
    expect(result.messages).toEqual([])
    expect(result.resources).toHaveLength(3)
  })

  it('reads a file named twice (directly and through its directory) once', async () => {
    const file = join(dir, 'a.yaml')
    await writeFile(file, serviceEntry('a'))
    await symlink(file, join(dir, 'link.yaml'))
    const result = await loadResources([file, dir], 'default')
    expect(result.messages).toEqual([])
    expect(result.files).toEqual([file])
  })

  it('reports YAML syntax errors with file and line', async () => {
    const file = join(dir, 'bad.yaml')
    await writeFile(
      file,
      `${serviceEntry('a')}   ports: []\n---\n${serviceEntry('b')}\tlocation: MESH_INTERNAL\n`,
    )
    const result = await loadResources([file], 'default')
    expect(result.messages.map(formatMessage)).toEqual([
      `${file}:7: invalid YAML: All mapping items must start at the same column`,
      `${file}:15: invalid YAML: Tabs are not allowed as indentation`,
    ])
    expect(result.resources).toEqual([])
  })

  it('reports errors and warnings across files, each with its own file', async () => {
    await writeFile(join(dir, 'a.yaml'), `${serviceEntry('a')}  workloadSelector: {labels: {app: x}}\n`)
    await writeFile(join(dir, 'b.yaml'), `${serviceEntry('b')}  resolution: MAGIC\n`)
    const result = await loadResources([dir], 'default')
    expect(result.messages.map(formatMessage)).toEqual([
      `${join(dir, 'a.yaml')}:7: warning: field 'spec.workloadSelector' is not supported yet and is ignored`,
      `${join(dir, 'b.yaml')}:7: field 'spec.resolution': invalid value "MAGIC", expected one of NONE, STATIC, DNS, DNS_ROUND_ROBIN`,
    ])
    expect(result.resources.map((r) => r.name)).toEqual(['a'])
  })
})

const JSON_ENTRY = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  spec: { hosts: ['a.example.com'] },
}
