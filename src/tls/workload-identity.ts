// The proxy's own workload certificate: the bootstrap's `tls` files (re-read when they change) or one it issues and renews from `tls.ca`.

import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { FileWatcher } from '../files/file-watcher.ts'
import { log } from '../telemetry/log.ts'
import { type CertificateSet, certificateSet, INLINE_PATH } from './certificate-details.ts'
import { ExpiryMonitor } from './certificate-expiry.ts'

/** Where the workload certificate lives: Istio's file names (istio-agent writes them; `outrigger ca issue` too). */
export interface WorkloadTlsFiles {
  readonly certChain: string
  readonly privateKey: string
  readonly rootCert: string
}

/** Built-in issuing (bootstrap `tls: {ca, ttl}`): the CA directory, the SPIFFE ID to issue for, the lifetime. */
export interface WorkloadIssuing {
  readonly caDirectory: string
  readonly spiffeId: string
  readonly ttlMs: number
}

/** One consistent set of the workload's credentials, as node:tls takes them. */
export interface WorkloadCredentials {
  readonly key: Buffer
  readonly certChain: Buffer
  readonly rootCert: Buffer
  /** The leaf certificate's SPIFFE ID (its `spiffe://` URI SAN), or '' when it has none. */
  readonly spiffeId: string
  readonly notBefore: Date
  readonly notAfter: Date
}

/** A workload certificate that cannot be used; the message names the file. */
export class WorkloadIdentityError extends Error {
  readonly code = 'WORKLOAD_IDENTITY_INVALID'
}

/** The first `spiffe://` URI in an X509Certificate's subjectAltName text, or ''. */
export function spiffeIdOf(certificate: X509Certificate): string {
  for (const entry of (certificate.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('URI:spiffe://')) return entry.slice('URI:'.length)
  }
  return ''
}

async function readFileNamed(what: keyof WorkloadTlsFiles, path: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (error) {
    throw new WorkloadIdentityError(`tls.${what} ${path}: cannot read: ${(error as Error).message}`)
  }
}

/** Reads and checks the three files: the chain parses, the key matches its leaf, the root parses. */
export async function readWorkloadCredentials(files: WorkloadTlsFiles): Promise<WorkloadCredentials> {
  const [key, certChain, rootCert] = await Promise.all([
    readFileNamed('privateKey', files.privateKey),
    readFileNamed('certChain', files.certChain),
    readFileNamed('rootCert', files.rootCert),
  ])
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(certChain)
  } catch (error) {
    throw new WorkloadIdentityError(`tls.certChain ${files.certChain}: ${(error as Error).message}`)
  }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key))) {
      throw new WorkloadIdentityError(`tls.privateKey ${files.privateKey}: does not match tls.certChain`)
    }
  } catch (error) {
    if (error instanceof WorkloadIdentityError) throw error
    throw new WorkloadIdentityError(`tls.privateKey ${files.privateKey}: ${(error as Error).message}`)
  }
  try {
    new X509Certificate(rootCert)
  } catch (error) {
    throw new WorkloadIdentityError(`tls.rootCert ${files.rootCert}: ${(error as Error).message}`)
  }
  return {
    key,
    certChain,
    rootCert,
    spiffeId: spiffeIdOf(leaf),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  }
}

/** Issues a new certificate from the CA directory (read again each time, so a replaced CA is picked up). */
export async function issueWorkloadCredentials(issuing: WorkloadIssuing): Promise<WorkloadCredentials> {
  try {
    // The CA and node-forge load only for built-in issuing (bootstrap `tls: {ca}`), not with files from the platform.
    const { CertificateAuthority } = await import('../ca/certificate-authority.ts')
    const ca = await CertificateAuthority.load(issuing.caDirectory)
    const issued = await ca.issue(issuing.spiffeId, issuing.ttlMs)
    return {
      key: Buffer.from(issued.privateKey),
      certChain: Buffer.from(issued.certChain),
      rootCert: Buffer.from(issued.rootCert),
      spiffeId: issuing.spiffeId,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
    }
  } catch (error) {
    throw new WorkloadIdentityError(`tls.ca ${issuing.caDirectory}: ${(error as Error).message}`)
  }
}

/** How long to wait before retrying a failed renewal: a tenth of what is left, between 1 s and 1 min. */
function renewalRetryMs(current: WorkloadCredentials): number {
  return Math.min(60_000, Math.max(1000, (current.notAfter.getTime() - Date.now()) / 10))
}

/**
 * Holds the current credentials, from one of two sources:
 * - files (`tls: {certChain, privateKey, rootCert}`): when they change they are read again; a set that
 *   does not check out is logged and the last good one stays;
 * - built-in issuing (`tls: {ca, ttl}`): a certificate issued at start and renewed in memory when half of
 *   its lifetime (counted from issue) has passed; a failed renewal is logged, retried, and the current
 *   certificate stays.
 * Listeners (the TLS contexts built from it) are told of each new set: new handshakes use it, connections
 * already open keep what they negotiated. A certificate near its expiry is logged (certificate-expiry.ts).
 */
export class WorkloadIdentity {
  /** The watched files; undefined with built-in issuing. */
  readonly files: WorkloadTlsFiles | undefined
  /** Built-in issuing; undefined with files. */
  readonly issuing: WorkloadIssuing | undefined
  #current: WorkloadCredentials
  readonly #listeners: ((credentials: WorkloadCredentials) => void)[] = []
  readonly #watcher: FileWatcher | undefined
  readonly #expiry = new ExpiryMonitor('workload certificate')
  #renewal: NodeJS.Timeout | undefined
  #closed = false

  private constructor(
    source: { files: WorkloadTlsFiles } | { issuing: WorkloadIssuing },
    current: WorkloadCredentials,
  ) {
    this.#current = current
    if ('files' in source) {
      this.files = source.files
      this.issuing = undefined
      this.#watcher = new FileWatcher(() => void this.reload())
      this.#watcher.watch([source.files.certChain, source.files.privateKey, source.files.rootCert])
    } else {
      this.files = undefined
      this.issuing = source.issuing
      this.#watcher = undefined
      this.#scheduleRenewal(Date.now())
    }
    this.#watchExpiry()
  }

  /** Reads the files and starts watching them; throws a WorkloadIdentityError when they are unusable. */
  static async load(files: WorkloadTlsFiles): Promise<WorkloadIdentity> {
    return new WorkloadIdentity({ files }, await readWorkloadCredentials(files))
  }

  /** Issues a certificate from the CA and renews it at half its lifetime; throws a WorkloadIdentityError when the CA is unusable. */
  static async issue(issuing: WorkloadIssuing): Promise<WorkloadIdentity> {
    return new WorkloadIdentity({ issuing }, await issueWorkloadCredentials(issuing))
  }

  get current(): WorkloadCredentials {
    return this.#current
  }

  /** Calls `listener` with every new set of credentials. */
  onChange(listener: (credentials: WorkloadCredentials) => void): void {
    this.#listeners.push(listener)
  }

  /** The certificate and root as admin /certs shows them (Envoy's shape); `<inline>` for issued ones. */
  certificates(now = Date.now()): CertificateSet {
    const current = this.#current
    return certificateSet(
      { pem: current.rootCert, path: this.files?.rootCert ?? INLINE_PATH },
      { pem: current.certChain, path: this.files?.certChain ?? INLINE_PATH },
      now,
    )
  }

  /** Reads the files again; keeps the last good credentials when the new ones do not check out. */
  async reload(): Promise<void> {
    if (this.files === undefined) return
    let next: WorkloadCredentials
    try {
      next = await readWorkloadCredentials(this.files)
    } catch (error) {
      log.error(`workload certificate not reloaded, keeping the current one: ${(error as Error).message}`)
      return
    }
    const current = this.#current
    if (
      next.certChain.equals(current.certChain) &&
      next.key.equals(current.key) &&
      next.rootCert.equals(current.rootCert)
    ) {
      return
    }
    this.#replace(next, 'reloaded')
  }

  /** Issues the next certificate (built-in issuing); on failure keeps the current one and retries soon. */
  async renew(): Promise<void> {
    const issuing = this.issuing
    if (issuing === undefined || this.#closed) return
    const startedAt = Date.now()
    let next: WorkloadCredentials
    try {
      next = await issueWorkloadCredentials(issuing)
    } catch (error) {
      if (this.#closed) return
      const retryMs = renewalRetryMs(this.#current)
      log.error(
        `workload certificate not renewed, keeping the current one, retrying in ${Math.round(retryMs / 1000)} s: ${(error as Error).message}`,
      )
      this.#renewal = setTimeout(() => void this.renew(), retryMs)
      this.#renewal.unref()
      return
    }
    if (this.#closed) return
    this.#replace(next, 'renewed')
    this.#scheduleRenewal(startedAt)
  }

  close(): void {
    this.#closed = true
    this.#watcher?.close()
    if (this.#renewal !== undefined) clearTimeout(this.#renewal)
    this.#expiry.close()
  }

  #replace(next: WorkloadCredentials, how: string): void {
    this.#current = next
    log.info(
      `workload certificate ${how}: ${next.spiffeId || '(no SPIFFE ID)'} valid until ${next.notAfter.toISOString()}`,
    )
    this.#watchExpiry()
    for (const listener of this.#listeners) listener(next)
  }

  /** Renews when half the lifetime from `issuedAt` (when issuing began) to NotAfter has passed. */
  #scheduleRenewal(issuedAt: number): void {
    const halfLife = (this.#current.notAfter.getTime() - issuedAt) / 2
    const delay = Math.min(2 ** 31 - 1, Math.max(0, issuedAt + halfLife - Date.now()))
    this.#renewal = setTimeout(() => void this.renew(), delay)
    this.#renewal.unref()
  }

  #watchExpiry(): void {
    const current = this.#current
    this.#expiry.watch(current, `workload certificate ${current.spiffeId || '(no SPIFFE ID)'}`)
  }
}
