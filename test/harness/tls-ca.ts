// A test certificate authority made with the openssl CLI: a root, and server or client certificates it signs.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestCert } from './tls-cert.ts'

export interface TestCa extends TestCert {
  /** Signs a one-day certificate for `cn` with these SANs (`DNS:a`, `URI:spiffe://…`, `IP:127.0.0.1`). */
  issue(cn: string, sans: readonly string[]): TestCert
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' })
}

function inTempDir<T>(work: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-ca-'))
  try {
    return work(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A new root CA (RSA 2048, one day) named `name`. */
export function testCa(name: string): TestCa {
  const root = inTempDir((dir) => {
    const key = join(dir, 'ca-key.pem')
    const cert = join(dir, 'ca-cert.pem')
    openssl([
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
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ])
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') }
  })
  return {
    ...root,
    issue: (cn, sans) =>
      inTempDir((dir) => {
        const caKey = join(dir, 'ca-key.pem')
        const caCert = join(dir, 'ca-cert.pem')
        writeFileSync(caKey, root.key)
        writeFileSync(caCert, root.cert)
        const key = join(dir, 'key.pem')
        const csr = join(dir, 'req.csr')
        const cert = join(dir, 'cert.pem')
        const ext = join(dir, 'ext.cnf')
        writeFileSync(
          ext,
          `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n` +
            `extendedKeyUsage=serverAuth,clientAuth\n${sans.length > 0 ? `subjectAltName=${sans.join(',')}\n` : ''}`,
        )
        openssl([
          'req',
          '-new',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          key,
          '-out',
          csr,
          '-subj',
          `/CN=${cn}`,
        ])
        openssl([
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          caCert,
          '-CAkey',
          caKey,
          '-CAcreateserial',
          '-out',
          cert,
          '-days',
          '1',
          '-extfile',
          ext,
        ])
        return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') }
      }),
  }
}
