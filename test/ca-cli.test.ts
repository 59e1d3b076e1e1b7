// Scenario: `outrigger ca init` and `ca issue` as real processes, their files checked with the openssl CLI against Istio's certificate profile.

import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mainScript } from './harness/proxy-process.ts'

let dir: string

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainScript, ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8' })
}

/** The seconds between `Not Before` and `Not After` in `openssl x509 -text` output. */
function lifetimeSeconds(text: string): number {
  const notBefore = /Not Before: (.+)/.exec(text)?.[1] ?? ''
  const notAfter = /Not After : (.+)/.exec(text)?.[1] ?? ''
  return (Date.parse(notAfter) - Date.parse(notBefore)) / 1000
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-ca-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('outrigger ca', () => {
  it('init makes a root and issue a workload certificate that chains to it, in Istio’s profile (generate_cert.go)', async () => {
    const caDir = join(dir, 'ca')
    const init = cli('ca', 'init', '--out', caDir, '--trust-domain', 'example.org')
    expect(init.stderr).toBe('')
    expect(init.code).toBe(0)
    expect((await stat(join(caDir, 'ca-key.pem'))).mode & 0o777).toBe(0o600)
    const root = openssl('x509', '-in', join(caDir, 'ca-cert.pem'), '-noout', '-text')
    expect(root).toMatch(/Subject: O ?= ?example\.org/)
    expect(root).toMatch(/Basic Constraints: critical\s+CA:TRUE/)
    expect(root).toMatch(/Key Usage: critical\s+Certificate Sign/)
    expect(await readFile(join(caDir, 'root-cert.pem'), 'utf8')).toBe(
      await readFile(join(caDir, 'ca-cert.pem'), 'utf8'),
    )

    const out = join(dir, 'sleep')
    const spiffe = 'spiffe://example.org/ns/default/sa/sleep'
    const issue = cli('ca', 'issue', '--ca', caDir, '--spiffe', spiffe, '--out', out, '--ttl', '2h')
    expect(issue.stderr).toBe('')
    expect(issue.code).toBe(0)
    expect(issue.stdout).toContain(spiffe)
    expect((await stat(join(out, 'key.pem'))).mode & 0o777).toBe(0o600)
    expect(openssl('verify', '-CAfile', join(out, 'root-cert.pem'), join(out, 'cert-chain.pem')).trim()).toBe(
      `${join(out, 'cert-chain.pem')}: OK`,
    )
    const leaf = openssl('x509', '-in', join(out, 'cert-chain.pem'), '-noout', '-text')
    // An empty subject, so the SAN is critical (RFC 5280 4.2.1.6), and the SPIFFE ID is its only name.
    expect(leaf).toMatch(/Subject: *\n/)
    expect(leaf).toMatch(new RegExp(`Subject Alternative Name: critical\\s+URI:${spiffe}\\n`))
    expect(leaf).toMatch(/Basic Constraints: critical\s+CA:FALSE/)
    expect(leaf).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment\n/)
    expect(leaf).toMatch(
      /Extended Key Usage: *\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
    )
    expect(leaf).toMatch(/Public-Key: \(2048 bit\)/)
    // 2h from now, NotBefore backdated 2 minutes for clock skew (ClockSkewGracePeriod).
    expect(lifetimeSeconds(leaf)).toBe(2 * 3600 + 120)
    expect(Date.parse(/Not Before: (.+)/.exec(leaf)?.[1] ?? '')).toBeLessThan(Date.now() - 100_000)
    // The key is the leaf's.
    const modulus = (args: string[]) => openssl(...args, '-noout', '-modulus')
    expect(modulus(['rsa', '-in', join(out, 'key.pem')])).toBe(
      modulus(['x509', '-in', join(out, 'cert-chain.pem')]),
    )
  })

  it('refuses a bad SPIFFE ID, a bad ttl and ECDSA with exit code 2, and names what is wrong', async () => {
    const caDir = join(dir, 'ca')
    const bad = (spiffe: string) =>
      cli('ca', 'issue', '--ca', caDir, '--spiffe', spiffe, '--out', join(dir, 'x'))
    for (const [spiffe, reason] of [
      ['http://example.org/ns/a/sa/b', "must start with 'spiffe://'"],
      ['spiffe://Example.org/ns/a/sa/b', 'lowercase'],
      ['spiffe://example.org/ns/a/sa/', 'empty segment'],
      ['spiffe://example.org/ns/a/serviceaccount/b', '/ns/<namespace>/sa/<service account>'],
      ['spiffe://example.org/ns/a b/sa/c', "path segment 'a b'"],
    ]) {
      const r = bad(spiffe)
      expect(r.code, spiffe).toBe(2)
      expect(r.stderr).toContain(`--spiffe: invalid SPIFFE ID '${spiffe}': `)
      expect(r.stderr).toContain(reason)
    }
    const ttl = cli(
      'ca',
      'issue',
      '--ca',
      caDir,
      '--spiffe',
      'spiffe://example.org/ns/a/sa/b',
      '--out',
      dir,
      '--ttl',
      '1 day',
    )
    expect(ttl.code).toBe(2)
    expect(ttl.stderr).toContain("--ttl: invalid duration '1 day'")
    const ecdsa = cli('ca', 'init', '--out', join(dir, 'ec'), '--key-type', 'ecdsa')
    expect(ecdsa.code).toBe(2)
    expect(ecdsa.stderr).toContain('--key-type ecdsa is not supported: node-forge')
    const missing = cli('ca', 'issue', '--spiffe', 'spiffe://example.org/ns/a/sa/b', '--out', dir)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--ca is required')
    expect(cli('ca', 'sign').code).toBe(2)
  })

  it('a missing CA directory or an existing CA key is an error with exit code 1', () => {
    const none = join(dir, 'no-such-ca')
    const r = cli(
      'ca',
      'issue',
      '--ca',
      none,
      '--spiffe',
      'spiffe://example.org/ns/a/sa/b',
      '--out',
      join(dir, 'y'),
    )
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${join(none, 'ca-cert.pem')}: no such file`)
    expect(r.stderr).toContain(`outrigger ca init --out ${none}`)
    const again = cli('ca', 'init', '--out', join(dir, 'ca'))
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('ca-key.pem already exists')
  })
})
