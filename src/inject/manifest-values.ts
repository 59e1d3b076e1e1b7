// Plain JSON values of a Kubernetes manifest, and the checked accessors inject reads them through.

/** A value parsed from a manifest: YAML's core schema yields only these. */
export type ManifestValue = string | number | boolean | null | ManifestValue[] | ManifestObject

export interface ManifestObject {
  [key: string]: ManifestValue
}

/** A manifest path, as the YAML loader names lines (`spec.template.spec.containers[0]` is `['spec', 'template', 'spec', 'containers', 0]`). */
export type ManifestPath = readonly (string | number)[]

/** A manifest whose shape is not what Kubernetes accepts, at `path` inside its document. */
export class ManifestShapeError extends Error {
  readonly path: ManifestPath
  constructor(path: ManifestPath, message: string) {
    super(`${formatPath(path)}: ${message}`)
    this.path = path
  }
}

export function isObject(value: unknown): value is ManifestObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `object[key]` when it is a mapping; undefined when absent or null; an error when it is something else. */
export function objectAt(
  object: ManifestObject,
  key: string,
  path: ManifestPath,
): ManifestObject | undefined {
  const value = object[key]
  if (value === undefined || value === null) return undefined
  if (!isObject(value)) throw new ManifestShapeError([...path, key], 'expected a mapping')
  return value
}

/** `object[key]` when it is a list; undefined when absent or null; an error when it is something else. */
export function listAt(object: ManifestObject, key: string, path: ManifestPath): ManifestValue[] | undefined {
  const value = object[key]
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value)) throw new ManifestShapeError([...path, key], 'expected a list')
  return value
}

/** `object[key]` as a list of mappings (containers, volumes, ports…). */
export function objectListAt(object: ManifestObject, key: string, path: ManifestPath): ManifestObject[] {
  const list = listAt(object, key, path) ?? []
  return list.map((item, index) => {
    if (!isObject(item)) throw new ManifestShapeError([...path, key, index], 'expected a mapping')
    return item
  })
}

/** `object[key]` as a string; undefined when absent. */
export function stringAt(object: ManifestObject, key: string, path: ManifestPath): string | undefined {
  const value = object[key]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new ManifestShapeError([...path, key], 'expected a string')
  return value
}

/** Labels or annotations: a mapping of strings (Kubernetes refuses any other value). */
export function stringMapAt(object: ManifestObject, key: string, path: ManifestPath): Record<string, string> {
  const map = objectAt(object, key, path)
  const result: Record<string, string> = {}
  if (map === undefined) return result
  for (const [name, value] of Object.entries(map)) {
    if (typeof value !== 'string')
      throw new ManifestShapeError([...path, key, name], 'expected a string value')
    result[name] = value
  }
  return result
}

export function formatPath(path: ManifestPath): string {
  let text = ''
  for (const segment of path) {
    text += typeof segment === 'number' ? `[${segment}]` : text === '' ? segment : `.${segment}`
  }
  return text
}
