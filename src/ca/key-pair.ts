// A new RSA key pair made by node:crypto off the event loop (node-forge's pure-JS key generation blocks it for seconds).

import { generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'

const generateKeyPairAsync = promisify(generateKeyPair)

/** Key size as istio-agent's default (WORKLOAD_RSA_KEY_SIZE / citadel's 2048). */
export const DEFAULT_RSA_KEY_BITS = 2048

/** An RSA key pair as PEM: the private key PKCS#1 (`RSA PRIVATE KEY`, as istio-agent writes key.pem), the public key SPKI. */
export interface PemKeyPair {
  readonly privateKey: string
  readonly publicKey: string
}

/** Generates an RSA key pair in libuv's thread pool. */
export async function generateRsaKeyPair(bits = DEFAULT_RSA_KEY_BITS): Promise<PemKeyPair> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  })
  return { privateKey, publicKey }
}
