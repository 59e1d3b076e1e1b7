// Reads two V8 .heapsnapshot texts and says what the second holds more of, by constructor or closure name, with who holds the new objects.

interface SnapshotJson {
  snapshot: {
    meta: {
      node_fields: string[]
      node_types: [string[], ...unknown[]]
      edge_fields: string[]
      edge_types: [string[], ...unknown[]]
      location_fields?: string[]
    }
  }
  nodes: number[]
  edges: number[]
  strings: string[]
  locations?: number[]
}

/** One group of objects: how many and their self size (shallow: not what they retain), in bytes. */
export interface GroupTotal {
  count: number
  selfBytes: number
}

/** A parsed snapshot: each node's group (constructor, closure or kind), id and self size. */
export class HeapSnapshot {
  readonly #json: SnapshotJson
  readonly #nodeWidth: number
  readonly #edgeWidth: number
  readonly #types: string[]
  readonly #edgeTypes: string[]
  readonly #f: { type: number; name: number; id: number; size: number; edges: number }
  readonly #e: { type: number; name: number; to: number }
  /** Closure node index → `line:column` of its function, from the snapshot's locations. */
  readonly #closureAt = new Map<number, string>()
  readonly nodeCount: number

  constructor(text: string) {
    const json = JSON.parse(text) as SnapshotJson
    this.#json = json
    const meta = json.snapshot.meta
    this.#nodeWidth = meta.node_fields.length
    this.#edgeWidth = meta.edge_fields.length
    this.#types = meta.node_types[0]
    this.#edgeTypes = meta.edge_types[0]
    const nf = (name: string): number => meta.node_fields.indexOf(name)
    const ef = (name: string): number => meta.edge_fields.indexOf(name)
    this.#f = {
      type: nf('type'),
      name: nf('name'),
      id: nf('id'),
      size: nf('self_size'),
      edges: nf('edge_count'),
    }
    this.#e = { type: ef('type'), name: ef('name_or_index'), to: ef('to_node') }
    this.nodeCount = json.nodes.length / this.#nodeWidth
    const lf = meta.location_fields ?? []
    const locations = json.locations ?? []
    if (lf.length > 0) {
      const [obj, line, col] = [lf.indexOf('object_index'), lf.indexOf('line'), lf.indexOf('column')]
      for (let i = 0; i < locations.length; i += lf.length) {
        this.#closureAt.set(
          locations[i + obj] / this.#nodeWidth,
          `${locations[i + line] + 1}:${locations[i + col] + 1}`,
        )
      }
    }
  }

  id(node: number): number {
    return this.#json.nodes[node * this.#nodeWidth + this.#f.id]
  }

  selfSize(node: number): number {
    return this.#json.nodes[node * this.#nodeWidth + this.#f.size]
  }

  /** What a node counts under: a constructor name, `closure <name>`, or a kind in parentheses. */
  group(node: number): string {
    const nodes = this.#json.nodes
    const base = node * this.#nodeWidth
    const type = this.#types[nodes[base + this.#f.type]]
    const name = this.#json.strings[nodes[base + this.#f.name]] ?? ''
    switch (type) {
      case 'object':
        return name
      case 'closure': {
        const at = this.#closureAt.get(node)
        return `closure ${name === '' ? '(anonymous)' : name}${name === '' && at !== undefined ? ` @${at}` : ''}`
      }
      case 'string':
      case 'concatenated string':
      case 'sliced string':
        return `(${type})`
      case 'native':
      case 'hidden':
      case 'array':
      case 'synthetic':
        return `(${type}) ${name.length > 60 ? `${name.slice(0, 57)}...` : name}`
      default:
        return `(${type})`
    }
  }

  /** Every group's count and self size. */
  totals(): Map<string, GroupTotal> {
    const totals = new Map<string, GroupTotal>()
    for (let n = 0; n < this.nodeCount; n++) {
      const key = this.group(n)
      const t = totals.get(key)
      if (t === undefined) totals.set(key, { count: 1, selfBytes: this.selfSize(n) })
      else {
        t.count++
        t.selfBytes += this.selfSize(n)
      }
    }
    return totals
  }

  ids(): Set<number> {
    const ids = new Set<number>()
    for (let n = 0; n < this.nodeCount; n++) ids.add(this.id(n))
    return ids
  }

  /**
   * For the nodes `isNew` selects whose group is in `groups`: every strong edge that points at one,
   * counted as `<holder's group>.<edge name>` per group of the target.
   */
  retainers(isNew: (node: number) => boolean, groups: ReadonlySet<string>): Map<string, Map<string, number>> {
    const nodes = this.#json.nodes
    const edges = this.#json.edges
    const strings = this.#json.strings
    const byGroup = new Map<string, Map<string, number>>()
    let edge = 0
    for (let from = 0; from < this.nodeCount; from++) {
      const count = nodes[from * this.#nodeWidth + this.#f.edges]
      let fromGroup: string | undefined
      for (let k = 0; k < count; k++, edge += this.#edgeWidth) {
        const type = this.#edgeTypes[edges[edge + this.#e.type]]
        if (type === 'weak' || type === 'shortcut') continue
        const to = edges[edge + this.#e.to] / this.#nodeWidth
        if (!isNew(to)) continue
        const toGroup = this.group(to)
        if (!groups.has(toGroup)) continue
        fromGroup ??= this.group(from)
        const raw = edges[edge + this.#e.name]
        const name = type === 'element' || type === 'hidden' ? `[${type}]` : (strings[raw] ?? '?')
        const key = `${fromGroup}.${name}`
        let holders = byGroup.get(toGroup)
        if (holders === undefined) {
          holders = new Map()
          byGroup.set(toGroup, holders)
        }
        holders.set(key, (holders.get(key) ?? 0) + 1)
      }
    }
    return byGroup
  }
}

/** One line of a diff: a group's growth per connection and who holds its new objects. */
export interface GroupGrowth {
  readonly group: string
  readonly countPer: number
  readonly bytesPer: number
  /** The most common holders of the new objects, `holder.edge (share %)`. */
  readonly heldBy: string[]
}

/** The growth from `before` to `after`, per connection (÷ `per`), largest self size first. */
export function diffSnapshots(
  before: HeapSnapshot,
  after: HeapSnapshot,
  per: number,
  top = 30,
): { totalBytesPer: number; groups: GroupGrowth[] } {
  const a = before.totals()
  const b = after.totals()
  const rows: { group: string; count: number; bytes: number }[] = []
  let total = 0
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const count = (b.get(key)?.count ?? 0) - (a.get(key)?.count ?? 0)
    const bytes = (b.get(key)?.selfBytes ?? 0) - (a.get(key)?.selfBytes ?? 0)
    total += bytes
    rows.push({ group: key, count, bytes })
  }
  rows.sort((x, y) => y.bytes - x.bytes)
  const shown = rows.slice(0, top)
  const oldIds = before.ids()
  const isNew = (node: number): boolean => !oldIds.has(after.id(node))
  const holders = after.retainers(isNew, new Set(shown.map((r) => r.group)))
  return {
    totalBytesPer: total / per,
    groups: shown.map((r) => {
      const held = [...(holders.get(r.group) ?? new Map<string, number>()).entries()].sort(
        (x, y) => y[1] - x[1],
      )
      const sum = held.reduce((s, [, n]) => s + n, 0)
      return {
        group: r.group,
        countPer: r.count / per,
        bytesPer: r.bytes / per,
        heldBy: held.slice(0, 3).map(([k, n]) => `${k} (${Math.round((n * 100) / Math.max(1, sum))} %)`),
      }
    }),
  }
}
