// Operations on a flat [name, value, name, value, …] header list with lowercase names.

/** Removes, in place and keeping order, every header whose name is in `names`. */
export function removeHeaders(headers: string[], names: ReadonlySet<string>): void {
  let w = 0
  for (let r = 0; r < headers.length; r += 2) {
    if (names.has(headers[r])) continue
    headers[w] = headers[r]
    headers[w + 1] = headers[r + 1]
    w += 2
  }
  headers.length = w
}
