import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { selfSignedCert, type TestCert } from '../../../test/harness/tls-cert.ts'
import type { ServerTlsSettings } from '../istio/server-tls-settings.ts'
import type { ConfigMessage } from '../messages.ts'
import type { DownstreamTlsModel } from '../model.ts'
import { afterTlsTermination, compileIngressTls } from './ingress-tls.ts'

let dir: string
let resourceFile: string
let cert: TestCert
let other: TestCert

const settings = (overrides: Partial<ServerTlsSettings>): ServerTlsSettings => ({
  mode: 'SIMPLE',
  serverCertificate: 'certs/cert.pem',
  privateKey: 'certs/key.pem',
  minProtocolVersion: 'TLS_AUTO',
  maxProtocolVersion: 'TLS_AUTO',
  ...overrides,
})

/** Error messages sit at line 40 + the index of the field, to tell which field they point at. */
const FIELDS = ['serverCertificate', 'privateKey', 'caCertificates', 'caCrl', 'mode']
const at = (field?: string): ConfigMessage => ({
  severity: 'error',
  file: resourceFile,
  line: field === undefined ? 30 : 40 + FIELDS.indexOf(field),
  message: '',
})

function compile(tls: ServerTlsSettings): DownstreamTlsModel | ConfigMessage {
  return compileIngressTls(tls, 'http', resourceFile, at)
}

function failure(result: DownstreamTlsModel | ConfigMessage): ConfigMessage {
  if (!('message' in result)) throw new Error('expected a config error')
  return result
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'outrigger-ingress-tls-'))
  mkdirSync(join(dir, 'istio', 'certs'), { recursive: true })
  resourceFile = join(dir, 'istio', 'sidecar.yaml')
  cert = selfSignedCert(['localhost'])
  other = selfSignedCert(['other'])
  writeFileSync(join(dir, 'istio', 'certs', 'cert.pem'), cert.cert)
  writeFileSync(join(dir, 'istio', 'certs', 'key.pem'), cert.key)
  writeFileSync(join(dir, 'istio', 'certs', 'other-key.pem'), other.key)
  writeFileSync(join(dir, 'istio', 'certs', 'garbage.pem'), 'not a certificate\n')
  writeFileSync(join(dir, 'ca.pem'), other.cert)
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('compileIngressTls', () => {
  it('resolves relative paths beside the resource file and reads the files', () => {
    const model = compile(
      settings({ minProtocolVersion: 'TLSV1_2', maxProtocolVersion: 'TLSV1_3', cipherSuites: ['NOPE'] }),
    )
    if ('message' in model) throw new Error(model.message)
    expect(model.files.serverCertificate).toBe(join(dir, 'istio', 'certs', 'cert.pem'))
    expect(model.credentials.cert.toString()).toBe(cert.cert)
    expect(model.minVersion).toBe('TLSv1.2')
    expect(model.maxVersion).toBe('TLSv1.3')
    expect(model.ciphers).toBeUndefined()
    expect(model.source).toEqual({ file: resourceFile, line: 30 })
  })

  it('takes absolute paths as they are, and the CA and SANs for MUTUAL', () => {
    const model = compile(
      settings({ mode: 'MUTUAL', caCertificates: join(dir, 'ca.pem'), subjectAltNames: ['spiffe://a/b'] }),
    )
    if ('message' in model) throw new Error(model.message)
    expect(model.files.caCertificates).toBe(join(dir, 'ca.pem'))
    expect(model.credentials.ca?.toString()).toBe(other.cert)
    expect(model.subjectAltNames).toEqual(['spiffe://a/b'])
  })

  it('points a missing file at its field', () => {
    const error = failure(compile(settings({ privateKey: 'certs/missing.pem' })))
    expect(error.line).toBe(41)
    expect(error.message).toContain(
      `tls: privateKey ${join(dir, 'istio', 'certs', 'missing.pem')}: cannot read`,
    )
  })

  it('rejects a file that is not PEM, and a key that does not match the certificate', () => {
    const garbage = failure(compile(settings({ serverCertificate: 'certs/garbage.pem' })))
    expect(garbage.line).toBe(40)
    expect(garbage.message).toContain('is not a PEM certificate')
    const mismatch = failure(compile(settings({ privateKey: 'certs/other-key.pem' })))
    expect(mismatch.line).toBe(41)
    expect(mismatch.message).toContain('does not match the certificate')
    const badCa = failure(compile(settings({ mode: 'MUTUAL', caCertificates: 'certs/garbage.pem' })))
    expect(badCa.line).toBe(42)
  })

  it('maps the protocol a port carries after termination', () => {
    expect(['HTTPS', 'TLS', 'HTTP', ''].map(afterTlsTermination)).toEqual(['HTTP', 'TCP', 'HTTP', ''])
  })
})
