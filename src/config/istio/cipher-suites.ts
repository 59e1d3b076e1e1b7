// TLS cipher suite names checked as Istio checks them: used by the ServerTLSSettings schema and the compiler.

import { getCiphers } from 'node:tls'

/** Cipher suite names node:tls (OpenSSL) knows, lowercase: Envoy's names are OpenSSL's. */
const knownCiphers = new Set(getCiphers())

/** Istio's check of `cipherSuites`: unknown and repeated names are ignored with a warning. */
export function checkCipherSuites(suites: readonly string[]): {
  valid: string[]
  invalid: string[]
  duplicate: string[]
} {
  const valid: string[] = []
  const invalid: string[] = []
  const duplicate: string[] = []
  for (const suite of suites) {
    if (!knownCiphers.has(suite.toLowerCase())) invalid.push(suite)
    else if (valid.includes(suite)) duplicate.push(suite)
    else valid.push(suite)
  }
  return { valid, invalid: [...new Set(invalid)].sort(), duplicate: [...new Set(duplicate)].sort() }
}
