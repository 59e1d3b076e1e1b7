// The proxy's own workload certificate (the bootstrap's `tls` files): key, chain and root, re-read when the files change.

import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { FileWatcher } from '../files/file-watcher.ts'
import { log } from '../telemetry/log.ts'

/** Where the workload certificate lives: Istio's file names (istio-agent writes them; `outrigger ca issue` too). */
export interface WorkloadTlsFiles {
  readonly certChain: string
  readonly privateKey: string
  readonly rootCert: string
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

/**
 * Holds the current credentials. When the files change they are read again; a set that does not check
 * out is logged and the last good one stays. Listeners (the TLS contexts built from it) are told of
 * each new set: new handshakes use it, connections already open keep what they negotiated.
 */
export class WorkloadIdentity {
  readonly files: WorkloadTlsFiles
  #current: WorkloadCredentials
  readonly #listeners: ((credentials: WorkloadCredentials) => void)[] = []
  readonly #watcher: FileWatcher

  private constructor(files: WorkloadTlsFiles, current: WorkloadCredentials) {
    this.files = files
    this.#current = current
    this.#watcher = new FileWatcher(() => void this.reload())
    this.#watcher.watch([files.certChain, files.privateKey, files.rootCert])
  }

  /** Reads the files and starts watching them; throws a WorkloadIdentityError when they are unusable. */
  static async load(files: WorkloadTlsFiles): Promise<WorkloadIdentity> {
    return new WorkloadIdentity(files, await readWorkloadCredentials(files))
  }

  get current(): WorkloadCredentials {
    return this.#current
  }

  /** Calls `listener` with every new set of credentials. */
  onChange(listener: (credentials: WorkloadCredentials) => void): void {
    this.#listeners.push(listener)
  }

  /** Reads the files again; keeps the last good credentials when the new ones do not check out. */
  async reload(): Promise<void> {
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
    this.#current = next
    log.info(
      `workload certificate reloaded: ${next.spiffeId || '(no SPIFFE ID)'} valid until ${next.notAfter.toISOString()}`,
    )
    for (const listener of this.#listeners) listener(next)
  }

  close(): void {
    this.#watcher.close()
  }
}
