// Scenario: the workload certificate through a real proxy — built-in issuing (tls: {ca}), admin /certs in Envoy's shape, and the near-expiry warning.

import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import forge from 'node-forge'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CertificateAuthority } from '../src/ca/certificate-authority.ts'
import { signWorkloadCertificate } from '../src/ca/certificate-profile.ts'
import { generateRsaKeyPair } from '../src/ca/key-pair.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'

/** envoy/admin/v3/certs.proto as the proxy's JSON writes it. */
interface CertsDump {
  certificates: {
    ca_cert: CertificateDetails[]
    cert_chain: CertificateDetails[]
  }[]
}
interface CertificateDetails {
  path: string
  serial_number: string
  subject_alt_names: Record<string, string>[]
  days_until_expiration: string
  valid_from: string
  expiration_time: string
}

let dir: string
let caDirectory: string
let rootPem: string
const proxies: ProxyProcess[] = []

async function certs(proxy: ProxyProcess): Promise<CertsDump> {
  const res = await proxy.admin('/certs')
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('application/json')
  return (await res.json()) as CertsDump
}

const serialOf = (pem: string | Buffer): string =>
  new X509Certificate(pem).serialNumber.toLowerCase().replace(/^0+/, '')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-certs-'))
  caDirectory = join(dir, 'ca')
  rootPem = (await CertificateAuthority.init(caDirectory, { trustDomain: 'cluster.local' })).rootCertPem
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()))
  await rm(dir, { recursive: true, force: true })
})

describe('workload certificate in a running proxy', () => {
  it('tls: {ca} issues the node’s SPIFFE identity at start; /certs shows it (path <inline>) and the root', async () => {
    const proxy = await startProxy({
      resources: {},
      namespace: 'shop',
      extraBootstrap: `tls:\n  ca: ${caDirectory}\n  ttl: 48h\n`,
    })
    proxies.push(proxy)
    const dump = await certs(proxy)
    expect(dump.certificates).toHaveLength(1)
    const [{ ca_cert, cert_chain }] = dump.certificates
    expect(ca_cert).toEqual([
      {
        path: '<inline>',
        serial_number: serialOf(rootPem),
        subject_alt_names: [],
        days_until_expiration: String(
          Math.floor((Date.parse(new X509Certificate(rootPem).validTo) - Date.now()) / 86_400_000),
        ),
        valid_from: new X509Certificate(rootPem).validFromDate.toISOString().replace('.000', ''),
        expiration_time: new X509Certificate(rootPem).validToDate.toISOString().replace('.000', ''),
      },
    ])
    expect(cert_chain).toHaveLength(1)
    const leaf = cert_chain[0]
    expect(leaf.path).toBe('<inline>')
    expect(leaf.subject_alt_names).toEqual([{ uri: 'spiffe://cluster.local/ns/shop/sa/default' }])
    // 48 h from issue: one whole day left and a bit, as Envoy floors days_until_expiration.
    expect(leaf.days_until_expiration).toBe('1')
    const lifetimeMs = Date.parse(leaf.expiration_time) - Date.parse(leaf.valid_from)
    expect(lifetimeMs).toBe(48 * 3600_000 + 120_000)
    expect(leaf.serial_number).toMatch(/^[0-9a-f]+$/)
    expect(proxy.stderr()).not.toContain('expires in')
  })

  it('files near expiry are logged as a warning at start, and /certs shows them with their paths', async () => {
    const authority = await CertificateAuthority.load(caDirectory)
    const signer = {
      certificate: forge.pki.certificateFromPem(authority.certificatePem),
      privateKey: createPrivateKey(await readFile(join(caDirectory, 'ca-key.pem'), 'utf8')),
    }
    const keys = await generateRsaKeyPair()
    const now = Date.now()
    // 10 minutes left of 70: under the 1/5 threshold.
    const leafPem = await signWorkloadCertificate({
      publicKeyPem: keys.publicKey,
      spiffeId: 'spiffe://cluster.local/ns/default/sa/expiring',
      notBefore: new Date(now - 60 * 60_000),
      notAfter: new Date(now + 10 * 60_000),
      signer,
    })
    const certDir = join(dir, 'expiring')
    await rm(certDir, { recursive: true, force: true })
    const { mkdir } = await import('node:fs/promises')
    await mkdir(certDir)
    await writeFile(join(certDir, 'key.pem'), keys.privateKey)
    await writeFile(join(certDir, 'cert-chain.pem'), leafPem)
    await writeFile(join(certDir, 'root-cert.pem'), rootPem)
    const proxy = await startProxy({
      resources: {},
      extraBootstrap: `tls:\n  certChain: ${join(certDir, 'cert-chain.pem')}\n  privateKey: ${join(certDir, 'key.pem')}\n  rootCert: ${join(certDir, 'root-cert.pem')}\n`,
    })
    proxies.push(proxy)
    await eventually(async () => proxy.stderr().includes('expires in'))
    expect(proxy.stderr()).toMatch(
      /warning workload certificate spiffe:\/\/cluster\.local\/ns\/default\/sa\/expiring expires in (9|10) min \(at \S+\): less than 1\/5 of its lifetime is left/,
    )
    const [{ ca_cert, cert_chain }] = (await certs(proxy)).certificates
    expect(ca_cert.map((c) => [c.path, c.serial_number])).toEqual([
      [join(certDir, 'root-cert.pem'), serialOf(rootPem)],
    ])
    expect(cert_chain.map((c) => [c.path, c.serial_number, c.days_until_expiration])).toEqual([
      [join(certDir, 'cert-chain.pem'), serialOf(leafPem), '0'],
    ])
    expect(cert_chain[0].subject_alt_names).toEqual([
      { uri: 'spiffe://cluster.local/ns/default/sa/expiring' },
    ])
  })

  it('a proxy without tls lists no certificates', async () => {
    const proxy = await startProxy({ resources: {} })
    proxies.push(proxy)
    expect(await certs(proxy)).toEqual({ certificates: [] })
  })
})
