// The workload certificate: read and checked from Istio's file names, reloaded when the files change, the last good set kept.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { testCa } from '../../test/harness/tls-ca.ts'
import { type WorkloadCredentials, WorkloadIdentity, WorkloadIdentityError } from './workload-identity.ts'

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
