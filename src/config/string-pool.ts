// Shares one copy of each string read from a config file, detached from the file's text.

/**
 * V8 makes a substring of 13 or more characters a slice that keeps its whole parent alive: a host
 * name read from one YAML document would keep that document's text (or the file's) in memory.
 */
const MIN_SLICE_LENGTH = 13

export class StringPool {
  readonly #strings = new Map<string, string>()

  /** The pooled copy of `value`: equal strings share one copy, and a long one is copied off its parent. */
  intern(value: string): string {
    const pooled = this.#strings.get(value)
    if (pooled !== undefined) return pooled
    // Concatenating flattens into a new string; the slice of that holds the copy, not the file's text.
    const own = value.length < MIN_SLICE_LENGTH ? value : ` ${value}`.slice(1)
    this.#strings.set(own, own)
    return own
  }
}
