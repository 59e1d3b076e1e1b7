// Scenario: Envoy's gauge envoy_server_days_until_first_cert_expiring on admin /stats/prometheus, through a real proxy, as certificates are loaded, rotated and expire.

import { createPrivateKey } from 'node:crypto'
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import forge from 'node-forge'
import { register } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CertificateAuthority, writeWorkloadFiles } from '../src/ca/certificate-authority.ts'
import { signWorkloadCertificate } from '../src/ca/certificate-profile.ts'
import { generateRsaKeyPair } from '../src/ca/key-pair.ts'
import { loopbackIngress, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { testCa } from './harness/tls-ca.ts'

const GAUGE = 'envoy_server_days_until_first_cert_expiring'
const HOUR_MS = 3600_000
const SPIFFE_ID = 'spiffe://cluster.local/ns/default/sa/metric'

let dir: string
let ca: CertificateAuthority
const proxies: ProxyProcess[] = []

/** The gauge's value in the proxy's Prometheus text, or undefined when the line is missing. */
async function scrapeGauge(proxy: ProxyProcess): Promise<number | undefined> {
  const res = await proxy.admin('/stats/prometheus')
  expect(res.status).toBe(200)
  // prom-client's text exposition format 0.0.4, the content type Prometheus asks for.
  expect(res.headers.get('content-type')).toBe(register.contentType)
  const text = await res.text()
  expect(text).toContain(`# TYPE ${GAUGE} gauge\n`)
  const line = text.split('\n').find((l) => l.startsWith(`${GAUGE} `))
  return line === undefined ? undefined : Number(line.slice(GAUGE.length + 1))
}

function workloadTls(certDir: string): string {
  return `tls:\n  certChain: ${join(certDir, 'cert-chain.pem')}\n  privateKey: ${join(certDir, 'key.pem')}\n  rootCert: ${join(certDir, 'root-cert.pem')}\n`
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-cert-metric-'))
  // A 10-year root: the leaf is always the certificate that expires first.
  ca = await CertificateAuthority.init(join(dir, 'ca'), { trustDomain: 'cluster.local' })
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()))
  await rm(dir, { recursive: true, force: true })
})

describe('envoy_server_days_until_first_cert_expiring (Envoy server.days_until_first_cert_expiring)', () => {
  it('is the whole days left of the workload certificate, floored, and follows the files when they rotate', async () => {
    const certDir = join(dir, 'rotating')
    // 84 h: 3 whole days and 12 h (Envoy's ASN1_TIME_diff days: 3).
    await writeWorkloadFiles(certDir, await ca.issue(SPIFFE_ID, 84 * HOUR_MS))
    const proxy = await startProxy({ resources: {}, extraBootstrap: workloadTls(certDir) })
    proxies.push(proxy)
    expect(await scrapeGauge(proxy)).toBe(3)

    // The platform rotates to a 10.5-day certificate (a new cert-chain.pem beside the same key, swapped in whole).
    const next = await ca.issue(SPIFFE_ID, 252 * HOUR_MS)
    await writeWorkloadFiles(join(dir, 'rotating-next'), next)
    await rename(join(dir, 'rotating-next', 'key.pem'), join(certDir, 'key.pem'))
    await rename(join(dir, 'rotating-next', 'cert-chain.pem'), join(certDir, 'cert-chain.pem'))
    await eventually(async () => (await scrapeGauge(proxy)) === 10)
  })

  it('is 0 once a certificate the proxy holds has expired (Envoy: nullopt, reported value_or(0))', async () => {
    const keys = await generateRsaKeyPair()
    const now = Date.now()
    const expiredPem = await signWorkloadCertificate({
      publicKeyPem: keys.publicKey,
      spiffeId: SPIFFE_ID,
      notBefore: new Date(now - 48 * HOUR_MS),
      notAfter: new Date(now - HOUR_MS),
      signer: {
        certificate: forge.pki.certificateFromPem(ca.certificatePem),
        privateKey: createPrivateKey(await readFile(join(dir, 'ca', 'ca-key.pem'), 'utf8')),
      },
    })
    const certDir = join(dir, 'expired')
    await writeWorkloadFiles(certDir, {
      privateKey: keys.privateKey,
      certChain: expiredPem,
      rootCert: ca.rootCertPem,
      notBefore: new Date(now - 48 * HOUR_MS),
      notAfter: new Date(now - HOUR_MS),
    })
    const proxy = await startProxy({ resources: {}, extraBootstrap: workloadTls(certDir) })
    proxies.push(proxy)
    expect(await scrapeGauge(proxy)).toBe(0)
  })

  it('counts the Sidecar ingress TLS certificates too: a one-day server certificate makes it 0', async () => {
    const certDir = join(dir, 'ingress')
    await writeWorkloadFiles(certDir, await ca.issue(SPIFFE_ID, 84 * HOUR_MS))
    const server = testCa('metric-ingress-ca').issue('ingress', ['DNS:localhost'])
    await writeFile(join(certDir, 'server-cert.pem'), server.cert)
    await writeFile(join(certDir, 'server-key.pem'), server.key)
    const [port, appPort] = await freePorts(2)
    const proxy = await startProxy({
      resources: {
        'sidecar.yaml': sidecar({
          ingress: [
            {
              ...loopbackIngress(port, appPort, 'HTTPS', 'https'),
              tls: {
                mode: 'SIMPLE',
                serverCertificate: join(certDir, 'server-cert.pem'),
                privateKey: join(certDir, 'server-key.pem'),
              },
            },
          ],
        }),
      },
      extraBootstrap: workloadTls(certDir),
    })
    proxies.push(proxy)
    // The workload certificate alone would give 3; the one-day ingress certificate has under 24 h left.
    expect(await scrapeGauge(proxy)).toBe(0)
  })

  it('without any certificate is uint32 max, as Envoy reports it', async () => {
    const proxy = await startProxy({ resources: {} })
    proxies.push(proxy)
    expect(await scrapeGauge(proxy)).toBe(4294967295)
  })
})
