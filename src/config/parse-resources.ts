// One file's YAML text read into Istio resources, with every problem reported as a `file:line` message.

import { formatFieldPath } from './field-path.ts'
import { apiOf, ignoredKindGroup, isResourceKind, KNOWN_KINDS, specSchemaOf } from './kinds.ts'
import type { ConfigMessage } from './messages.ts'
import type { Resource, SpecPath } from './resource.ts'
import { StringPool } from './string-pool.ts'
import { validateValue } from './validate-value.ts'
import { readYamlDocuments, type TextSource, type YamlDocument } from './yaml-document.ts'

export interface ParsedResources {
  /** Resources whose documents had no errors, in file order. */
  readonly resources: Resource[]
  readonly messages: ConfigMessage[]
}

const TOP_LEVEL_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status'])

/** `source` gives the text again for lines asked for later; by default the resources keep `text` for that. */
export function parseResources(
  text: string,
  file: string,
  defaultNamespace: string,
  source?: TextSource,
): ParsedResources {
  const pool = new StringPool()
  const parsed = readYamlDocuments(
    text,
    (document) => {
      const documentMessages: ConfigMessage[] = []
      const report = (severity: ConfigMessage['severity'], path: SpecPath, message: string): void => {
        documentMessages.push({ severity, file, line: document.lineOf(path), message })
      }
      const resource = readResource(document, file, defaultNamespace, report, pool)
      return { resource, messages: documentMessages.sort((a, b) => a.line - b.line) }
    },
    source,
  )
  const messages: ConfigMessage[] = parsed.messages.map((message) => ({ ...message, file }))
  const resources: Resource[] = []
  for (const read of parsed.results) {
    if (read.resource !== undefined) resources.push(read.resource)
    messages.push(...read.messages)
  }
  return { resources, messages }
}

type Report = (severity: ConfigMessage['severity'], path: SpecPath, message: string) => void
type Fail = (path: SpecPath, message: string) => void

function readResource(
  document: YamlDocument,
  file: string,
  defaultNamespace: string,
  report: Report,
  pool: StringPool,
): Resource | undefined {
  const value = document.value
  if (!isPlainObject(value)) {
    report('error', [], 'a document must be a map with apiVersion, kind, metadata and spec')
    return undefined
  }
  let valid = true
  const fail: Fail = (path, message) => {
    report('error', path, message)
    valid = false
  }

  for (const key of Object.keys(value)) {
    if (!TOP_LEVEL_FIELDS.has(key)) fail([key], `unknown field '${formatFieldPath([key])}'`)
  }
  const apiVersion = requiredString(value, ['apiVersion'], fail)
  const kind = requiredString(value, ['kind'], fail)
  const identity = readMetadata(value.metadata, defaultNamespace, fail)
  if (apiVersion === undefined || kind === undefined) return undefined

  const group = apiVersion.split('/')[0]
  const ignoredGroup = ignoredKindGroup(kind)
  if (ignoredGroup !== undefined) {
    if (group === ignoredGroup)
      report('warning', ['kind'], `kind ${kind} is not supported yet and is ignored`)
    else fail(['apiVersion'], `kind ${kind} needs apiVersion ${ignoredGroup}/<version>`)
    return undefined
  }
  if (!isResourceKind(kind)) {
    fail(['kind'], `unknown kind '${kind}' (expected one of ${KNOWN_KINDS.join(', ')})`)
    return undefined
  }
  const version = apiVersion.slice(group.length + 1)
  const api = apiOf(kind)
  if (group !== api.group || !api.versions.includes(version)) {
    const expected = api.versions.map((v) => `${api.group}/${v}`).join(', ')
    fail(
      ['apiVersion'],
      `apiVersion '${apiVersion}' is not valid for kind ${kind} (expected one of ${expected})`,
    )
  }

  const validated = validateValue(specSchemaOf(kind), value.spec ?? {}, ['spec'], pool)
  for (const problem of validated.problems) {
    if (problem.severity === 'error') fail(problem.path, problem.message)
    else report('warning', problem.path, problem.message)
  }
  if (!valid || validated.value === undefined || identity === undefined) return undefined

  // The spec was validated by the schema of `kind`, so it is that kind's spec.
  return {
    kind: pool.intern(kind),
    apiVersion: pool.intern(apiVersion),
    name: pool.intern(identity.name),
    namespace: pool.intern(identity.namespace),
    spec: validated.value,
    source: { file, line: document.line },
    lineOf: specLineOf(document.lineOf),
  } as Resource
}

/** Lines of `spec.<path>`; the closure holds the document's locator only, not its values. */
function specLineOf(lineOf: YamlDocument['lineOf']): (path: SpecPath) => number {
  return (path) => lineOf(['spec', ...path])
}

/** metadata.name, and metadata.namespace or the default; other metadata (labels, annotations, …) is ignored. */
function readMetadata(
  metadata: unknown,
  defaultNamespace: string,
  fail: Fail,
): { name: string; namespace: string } | undefined {
  if (metadata === undefined || metadata === null) {
    fail([], "missing required field 'metadata'")
    return undefined
  }
  if (!isPlainObject(metadata)) {
    fail(['metadata'], "field 'metadata': expected a map")
    return undefined
  }
  const name = requiredString(metadata, ['metadata', 'name'], fail)
  const namespace =
    metadata.namespace === undefined || metadata.namespace === null
      ? defaultNamespace
      : requiredString(metadata, ['metadata', 'namespace'], fail)
  return name === undefined || namespace === undefined ? undefined : { name, namespace }
}

/** The non-empty string at `path` (one or two keys deep), reporting why when there is none. */
function requiredString(
  container: Record<string, unknown>,
  path: readonly string[],
  fail: Fail,
): string | undefined {
  const value = container[path[path.length - 1]]
  const field = formatFieldPath(path)
  if (value === undefined || value === null) {
    fail(path, `missing required field '${field}'`)
    return undefined
  }
  if (typeof value !== 'string' || value === '') {
    fail(path, `field '${field}': expected a non-empty string`)
    return undefined
  }
  return value
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
