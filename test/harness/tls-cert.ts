// A self-signed certificate made at test time with the openssl CLI, for TLS peers in scenario tests.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCert {
  readonly key: string
  readonly cert: string
}

/** Runs the openssl CLI quietly; throws when it fails. */
export function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' })
}

/** Runs `work` in a new temporary directory, removed afterwards. */
export function inTempDir<T>(work: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-cert-'))
  try {
    return work(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** An RSA key and a one-day self-signed certificate for subject CN `cn`, with these `-addext` extensions. */
export function selfSigned(cn: string, extensions: readonly string[]): TestCert {
  return inTempDir((dir) => {
    const key = join(dir, 'key.pem')
    const cert = join(dir, 'cert.pem')
    const request = [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
    ]
    openssl([...request, '-subj', `/CN=${cn}`, ...extensions.flatMap((extension) => ['-addext', extension])])
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') }
  })
}

/** An RSA key and a one-day certificate for `names` (the first is the subject CN; all are DNS SANs). */
export function selfSignedCert(names: readonly string[]): TestCert {
  return selfSigned(names[0], [`subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`])
}
