// A `--variant 'label:--node-flag ENV=value …'` argument of the memory benches, split into its label, node flags and environment.

export interface NodeVariant {
  readonly name: string
  readonly nodeFlags: readonly string[]
  readonly env: Record<string, string>
}

export function parseNodeVariant(spec: string): NodeVariant {
  const colon = spec.indexOf(':')
  return { name: spec.slice(0, colon), ...parseNodeWords(spec.slice(colon + 1)) }
}

/** `--node-flag ENV=value …` words (a `--with` argument), split into node flags and environment. */
export function parseNodeWords(text: string): Omit<NodeVariant, 'name'> {
  const words = text.split(/\s+/).filter(Boolean)
  return {
    nodeFlags: words.filter((w) => w.startsWith('--')),
    env: Object.fromEntries(
      words
        .filter((w) => !w.startsWith('--'))
        .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
    ),
  }
}
