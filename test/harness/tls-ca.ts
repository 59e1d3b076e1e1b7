// A test certificate authority made with the openssl CLI: a root, and server or client certificates it signs.

import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { inTempDir, openssl, selfSigned, type TestCert } from './tls-cert.ts'

export interface TestCa extends TestCert {
  /** Signs a one-day certificate for `cn` with these SANs (`DNS:a`, `URI:spiffe://…`, `IP:127.0.0.1`). */
  issue(cn: string, sans: readonly string[]): TestCert
}

/** A new root CA (RSA 2048, one day) named `name`. */
export function testCa(name: string): TestCa {
  const root = selfSigned(name, [
    'basicConstraints=critical,CA:TRUE',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
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
