// The workload certificate: read and checked from Istio's file names, reloaded when the files change, the last good set kept; or issued from a CA and renewed.

import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { testCa } from '../../test/harness/tls-ca.ts'
import { CertificateAuthority } from '../ca/certificate-authority.ts'
import {
  spiffeIdOf,
  type WorkloadCredentials,
  WorkloadIdentity,
  WorkloadIdentityError,
} from './workload-identity.ts'

const ca = testCa('workload-identity-test-root')
const first = ca.issue('sleep', ['URI:spiffe://cluster.local/ns/default/sa/sleep'])
const second = ca.issue('sleep', ['URI:spiffe://cluster.local/ns/default/sa/sleep-v2'])

describe('WorkloadIdentity', () => {
  let dir: string
  let identity: WorkloadIdentity | undefined
  const files = () => ({
    certChain: join(dir, 'cert-chain.pem'),
    privateKey: join(dir, 'key.pem'),
    rootCert: join(dir, 'root-cert.pem'),
  })
  const write = async (cert: { key: string; cert: string }): Promise<void> => {
    await writeFile(files().privateKey, cert.key)
    await writeFile(files().certChain, cert.cert)
    await writeFile(files().rootCert, ca.cert)
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-identity-'))
  })
  afterEach(async () => {
    identity?.close()
    identity = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('reads the three files and the leaf certificate SPIFFE ID and validity', async () => {
    await write(first)
    identity = await WorkloadIdentity.load(files())
    expect(identity.current.spiffeId).toBe('spiffe://cluster.local/ns/default/sa/sleep')
    expect(identity.current.certChain.toString()).toBe(first.cert)
    expect(identity.current.notAfter.getTime()).toBeGreaterThan(Date.now())
  })

  it('refuses a key that does not match the certificate, naming the file', async () => {
    await write({ key: second.key, cert: first.cert })
    const loading = WorkloadIdentity.load(files())
    await expect(loading).rejects.toBeInstanceOf(WorkloadIdentityError)
    await expect(loading).rejects.toThrow(
      `tls.privateKey ${files().privateKey}: does not match tls.certChain`,
    )
  })

  it('follows the files when they change, and keeps the last good set when the new one is broken', async () => {
    await write(first)
    identity = await WorkloadIdentity.load(files())
    const seen: WorkloadCredentials[] = []
    identity.onChange((c) => seen.push(c))
    await write(second)
    await expect
      .poll(() => identity?.current.spiffeId, { timeout: 5000 })
      .toBe('spiffe://cluster.local/ns/default/sa/sleep-v2')
    expect(seen.map((c) => c.spiffeId)).toEqual(['spiffe://cluster.local/ns/default/sa/sleep-v2'])
    await writeFile(files().certChain, 'not a certificate')
    await identity.reload()
    expect(identity.current.spiffeId).toBe('spiffe://cluster.local/ns/default/sa/sleep-v2')
    expect(seen).toHaveLength(1)
  })
})

describe('WorkloadIdentity built-in issuing (bootstrap tls: {ca, ttl})', () => {
  let dir: string
  let identity: WorkloadIdentity | undefined
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-issuing-'))
  })
  afterEach(async () => {
    identity?.close()
    identity = undefined
    await rm(dir, { recursive: true, force: true })
  })

  /** True when `certChain`'s leaf was signed by `rootPem` and names `spiffeId`. */
  function chainsTo(certChain: Buffer, rootPem: string, spiffeId: string): boolean {
    const leaf = new X509Certificate(certChain)
    const root = new X509Certificate(rootPem)
    return leaf.checkIssued(root) && leaf.verify(root.publicKey) && spiffeIdOf(leaf) === spiffeId
  }

  it('issues at start and renews at half the lifetime: onChange fires, the new certificate chains to the CA', async () => {
    const caDirectory = join(dir, 'ca')
    const authority = await CertificateAuthority.init(caDirectory, { trustDomain: 'cluster.local' })
    const spiffeId = 'spiffe://cluster.local/ns/default/sa/sleep'
    const started = Date.now()
    identity = await WorkloadIdentity.issue({ caDirectory, spiffeId, ttlMs: 4000 })
    const firstSet = identity.current
    expect(chainsTo(firstSet.certChain, authority.rootCertPem, spiffeId)).toBe(true)
    expect(firstSet.rootCert.toString()).toBe(authority.rootCertPem)
    expect(createPrivateKey(firstSet.key).asymmetricKeyType).toBe('rsa')
    expect(new X509Certificate(firstSet.certChain).checkPrivateKey(createPrivateKey(firstSet.key))).toBe(true)
    expect(firstSet.notAfter.getTime() - started).toBeGreaterThan(3500)
    expect(firstSet.notAfter.getTime() - started).toBeLessThanOrEqual(4000 + (Date.now() - started))

    const renewed = await new Promise<{ credentials: WorkloadCredentials; at: number }>((resolve) =>
      identity?.onChange((credentials) => resolve({ credentials, at: Date.now() })),
    )
    // Renewal starts at half of the 4 s lifetime; issuing (key generation and signing) takes a little more.
    expect(renewed.at - started).toBeGreaterThanOrEqual(1900)
    expect(renewed.at - started).toBeLessThan(3500)
    expect(renewed.credentials).toBe(identity.current)
    expect(renewed.credentials.certChain.equals(firstSet.certChain)).toBe(false)
    expect(renewed.credentials.key.equals(firstSet.key)).toBe(false)
    expect(chainsTo(renewed.credentials.certChain, authority.rootCertPem, spiffeId)).toBe(true)
    expect(renewed.credentials.notAfter.getTime()).toBeGreaterThan(firstSet.notAfter.getTime())
  })

  it('keeps the current certificate when a renewal fails (the CA is gone), and refuses an unusable CA at start', async () => {
    const caDirectory = join(dir, 'ca')
    await CertificateAuthority.init(caDirectory, { trustDomain: 'cluster.local' })
    const spiffeId = 'spiffe://cluster.local/ns/default/sa/sleep'
    identity = await WorkloadIdentity.issue({ caDirectory, spiffeId, ttlMs: 60_000 })
    const before = identity.current
    await rm(caDirectory, { recursive: true })
    await identity.renew()
    expect(identity.current).toBe(before)

    const error = await WorkloadIdentity.issue({ caDirectory, spiffeId, ttlMs: 60_000 }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(WorkloadIdentityError)
    expect((error as Error).message).toBe(
      `tls.ca ${caDirectory}: ${join(caDirectory, 'ca-cert.pem')}: no such file (a CA directory holds ca-cert.pem and ca-key.pem: make one with 'outrigger ca init --out ${caDirectory}')`,
    )
  })
})
