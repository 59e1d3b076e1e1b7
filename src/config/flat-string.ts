// Builds a string in one flat piece: V8 keeps a `+` or template result of 13+ characters as a rope of its parts.

/**
 * `parts` concatenated. A rope (cons string) costs a 32-byte node per `+`, and once it is hashed as a
 * map key it also holds a flattened copy; names kept per service (aliases, cluster names) are built flat.
 */
export function flat(...parts: readonly (string | number)[]): string {
  return parts.join('')
}
