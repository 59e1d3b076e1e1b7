// Reads Prometheus's text exposition: the sum of a metric's samples whose labels include a given set.

/** One sample line: `name{a="x",b="y"} value`. */
interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const brace = line.indexOf('{')
    const space = line.lastIndexOf(' ')
    const name = brace === -1 ? line.slice(0, space) : line.slice(0, brace)
    const labels: Record<string, string> = {}
    if (brace !== -1) {
      const body = line.slice(brace + 1, line.lastIndexOf('}'))
      for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2]
    }
    samples.push({ name, labels, value: Number(line.slice(space + 1)) })
  }
  return samples
}

/** The sum of `name`'s samples whose labels include every pair of `labels` (0 when none match). */
export function sumOf(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0
  for (const s of parseSamples(text)) {
    if (s.name !== name) continue
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value
  }
  return sum
}
