// Istio's HeaderOperations (set, add, remove) compiled for applying to a flat [name, value, …] header list.

import { removeHeaders } from './header-list.ts'

export interface HeaderEditsSpec {
  readonly set?: Readonly<Record<string, string>>
  readonly add?: Readonly<Record<string, string>>
  readonly remove?: readonly string[]
}

/**
 * A configured value as node writes it: node sends a header string as latin1 (and throws on a character
 * above U+00FF), so text beyond ASCII becomes its UTF-8 bytes, the bytes Envoy sends for the same YAML.
 */
function wireValue(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is every ASCII character
  return /[^\x00-\x7f]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value
}

export interface HeaderEditsDescription {
  readonly set: readonly (readonly [string, string])[]
  readonly add: readonly (readonly [string, string])[]
  readonly remove: readonly string[]
}

export class HeaderEdits {
  /** Lowercase names whose existing values are dropped (both `remove` and `set`). */
  readonly #drop: ReadonlySet<string>
  /** Flat [name, value, …] appended after dropping. */
  readonly #append: readonly string[]

  constructor(spec: HeaderEditsSpec) {
    const drop = new Set<string>()
    const append: string[] = []
    for (const name of spec.remove ?? []) drop.add(name.toLowerCase())
    for (const [name, value] of Object.entries(spec.set ?? {})) {
      drop.add(name.toLowerCase())
      append.push(name.toLowerCase(), wireValue(value))
    }
    for (const [name, value] of Object.entries(spec.add ?? {}))
      append.push(name.toLowerCase(), wireValue(value))
    this.#drop = drop
    this.#append = append
  }

  get isEmpty(): boolean {
    return this.#drop.size === 0 && this.#append.length === 0
  }

  /** Applies the edits in place to a flat list whose names are lowercase. */
  applyTo(headers: string[]): void {
    if (this.#drop.size > 0) removeHeaders(headers, this.#drop)
    for (let i = 0; i < this.#append.length; i++) headers.push(this.#append[i])
  }

  /**
   * The edits as configured, for `outrigger explain`: a name both dropped and appended was `set`, one only
   * appended was `add`ed, one only dropped was `remove`d (values as sent on the wire).
   */
  describe(): HeaderEditsDescription {
    const set: [string, string][] = []
    const add: [string, string][] = []
    for (let i = 0; i < this.#append.length; i += 2) {
      const pair: [string, string] = [this.#append[i], this.#append[i + 1]]
      if (this.#drop.has(pair[0])) set.push(pair)
      else add.push(pair)
    }
    const appended = new Set(set.map(([name]) => name))
    const remove = [...this.#drop].filter((name) => !appended.has(name))
    return { set, add, remove }
  }

  static readonly none = new HeaderEdits({})
}
