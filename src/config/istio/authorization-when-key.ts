// AuthorizationPolicy `when` keys read apart: plain data the compiler needs without the spec's schema (zod).

/** Keys with this prefix are Envoy filter metadata: accepted, and warned about when the policy is compiled. */
export const EXPERIMENTAL_PREFIX = 'experimental.envoy.filters.'

/** Splits `request.headers[x-id]` into its attribute and the names in brackets; undefined when malformed. */
export function splitWhenKey(key: string): { attribute: string; names: string[] } | undefined {
  const open = key.indexOf('[')
  if (open === -1) return { attribute: key, names: [] }
  if (!key.endsWith(']')) return undefined
  const names = key.slice(open + 1, -1).split('][')
  if (names.some((name) => name === '' || name.includes('[') || name.includes(']'))) return undefined
  return { attribute: key.slice(0, open), names }
}
