// A certificate authority kept in a directory (Istio's plug-in CA file names) that issues SPIFFE workload certificates.

import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import forge from 'node-forge'
import {
  CLOCK_SKEW_GRACE_MS,
  type ForgeSigner,
  signRootCertificate,
  signWorkloadCertificate,
} from './certificate-profile.ts'
import { generateRsaKeyPair } from './key-pair.ts'
import { parseWorkloadSpiffeId } from './spiffe-id.ts'

/**
 * The CA directory's files, named as Istio's `cacerts` secret (Istio's plug-in CA): the signing
 * certificate and its key, the root, and for an intermediate CA the chain from it to the root.
 */
export const CA_FILES = {
  certificate: 'ca-cert.pem',
  privateKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
} as const

/** A workload's files, named as istio-agent writes them (OUTPUT_CERTS) and as the bootstrap's `tls` reads them. */
export const WORKLOAD_FILES = {
  privateKey: 'key.pem',
  certChain: 'cert-chain.pem',
  rootCert: 'root-cert.pem',
} as const

/** The root's lifetime when none is given: Istio's self-signed CA default (CITADEL_SELF_SIGNED_CA_CERT_TTL, 10 years). */
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * 3600 * 1000
/** A workload certificate's lifetime when none is given: istio-agent's default (SECRET_TTL, 24h). */
export const DEFAULT_WORKLOAD_TTL_MS = 24 * 3600 * 1000

/** A CA that cannot be made, read or used; the message names the file or the input. */
export class CertificateAuthorityError extends Error {
  readonly code = 'CA_INVALID'
}

/** A workload's key, chain (leaf first) and root, as PEM. */
export interface IssuedCertificate {
  readonly privateKey: string
  readonly certChain: string
  readonly rootCert: string
  readonly notBefore: Date
  readonly notAfter: Date
}

/** Writes a file with `mode` (0600 for keys); the mode is set at creation, so no reader sees it open. */
async function writeWithMode(path: string, contents: string, mode: number): Promise<void> {
  await writeFile(path, contents, { mode, flag: 'w' })
}

async function readCaFile(directory: string, name: string, optional: boolean): Promise<string | undefined> {
  const path = join(directory, name)
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (optional && code === 'ENOENT') return undefined
    throw new CertificateAuthorityError(
      code === 'ENOENT'
        ? `${path}: no such file (a CA directory holds ${CA_FILES.certificate} and ${CA_FILES.privateKey}: make one with 'outrigger ca init --out ${directory}')`
        : `${path}: cannot read: ${(error as Error).message}`,
    )
  }
}

/** Writes `issued` as key.pem (0600), cert-chain.pem and root-cert.pem in `directory`, made if missing. */
export async function writeWorkloadFiles(directory: string, issued: IssuedCertificate): Promise<void> {
  await mkdir(directory, { recursive: true })
  await writeWithMode(join(directory, WORKLOAD_FILES.privateKey), issued.privateKey, 0o600)
  await writeWithMode(join(directory, WORKLOAD_FILES.certChain), issued.certChain, 0o644)
  await writeWithMode(join(directory, WORKLOAD_FILES.rootCert), issued.rootCert, 0o644)
}

export class CertificateAuthority {
  /** The signing certificate, PEM. */
  readonly certificatePem: string
  /** The root that workloads trust, PEM (the signing certificate itself for a root CA). */
  readonly rootCertPem: string
  /** What follows a workload's leaf in its cert-chain.pem: nothing for a root CA, else the chain up from the CA. */
  readonly #chainAfterLeaf: string
  readonly #signer: ForgeSigner
  readonly #notAfter: Date

  private constructor(
    certificatePem: string,
    privateKeyPem: string,
    rootCertPem: string,
    chainPem: string | undefined,
  ) {
    this.certificatePem = certificatePem
    this.rootCertPem = rootCertPem
    const isRoot = certificatePem.trim() === rootCertPem.trim()
    this.#chainAfterLeaf = isRoot ? '' : (chainPem ?? certificatePem)
    this.#signer = {
      certificate: forge.pki.certificateFromPem(certificatePem),
      privateKey: createPrivateKey(privateKeyPem),
    }
    this.#notAfter = new X509Certificate(certificatePem).validToDate
  }

  /**
   * Makes a new root CA in `directory` (created if missing): ca-key.pem (0600), ca-cert.pem and
   * root-cert.pem (the same certificate). Refuses to overwrite an existing ca-key.pem.
   */
  static async init(
    directory: string,
    options: { trustDomain: string; ttlMs?: number },
  ): Promise<CertificateAuthority> {
    const ttlMs = options.ttlMs ?? DEFAULT_ROOT_TTL_MS
    if (!(ttlMs > 0)) throw new CertificateAuthorityError('the root certificate lifetime must be positive')
    const keys = await generateRsaKeyPair()
    const now = Date.now()
    const certificatePem = await signRootCertificate({
      publicKeyPem: keys.publicKey,
      privateKeyPem: keys.privateKey,
      organization: options.trustDomain,
      notBefore: new Date(now - CLOCK_SKEW_GRACE_MS),
      notAfter: new Date(now + ttlMs),
    })
    await mkdir(directory, { recursive: true })
    try {
      await writeFile(join(directory, CA_FILES.privateKey), keys.privateKey, { mode: 0o600, flag: 'wx' })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      throw new CertificateAuthorityError(
        `${join(directory, CA_FILES.privateKey)} already exists: a CA is not overwritten (remove the directory first)`,
      )
    }
    await writeWithMode(join(directory, CA_FILES.certificate), certificatePem, 0o644)
    await writeWithMode(join(directory, CA_FILES.rootCert), certificatePem, 0o644)
    return new CertificateAuthority(certificatePem, keys.privateKey, certificatePem, undefined)
  }

  /**
   * Reads a CA directory: ca-cert.pem and ca-key.pem (required), root-cert.pem (default: ca-cert.pem) and
   * cert-chain.pem (an intermediate's chain to the root, as in Istio's cacerts). Checks that the
   * certificate is a CA that may sign certificates, that the key is its own and RSA, and that it has not expired.
   */
  static async load(directory: string): Promise<CertificateAuthority> {
    // Read together, but the error names the first missing file in this order whichever read fails first.
    const reads = await Promise.allSettled([
      readCaFile(directory, CA_FILES.certificate, false),
      readCaFile(directory, CA_FILES.privateKey, false),
      readCaFile(directory, CA_FILES.rootCert, true),
      readCaFile(directory, CA_FILES.certChain, true),
    ])
    for (const read of reads) if (read.status === 'rejected') throw read.reason
    const [certificatePem, privateKeyPem, rootPem, chainPem] = reads.map((read) =>
      read.status === 'fulfilled' ? read.value : undefined,
    )
    const certificatePath = join(directory, CA_FILES.certificate)
    const keyPath = join(directory, CA_FILES.privateKey)
    let certificate: X509Certificate
    try {
      certificate = new X509Certificate(certificatePem as string)
    } catch (error) {
      throw new CertificateAuthorityError(`${certificatePath}: ${(error as Error).message}`)
    }
    if (!certificate.ca)
      throw new CertificateAuthorityError(
        `${certificatePath}: not a CA certificate (basicConstraints CA:FALSE)`,
      )
    if (certificate.validToDate.getTime() <= Date.now()) {
      throw new CertificateAuthorityError(
        `${certificatePath}: expired at ${certificate.validToDate.toISOString()}`,
      )
    }
    let key: ReturnType<typeof createPrivateKey>
    try {
      key = createPrivateKey(privateKeyPem as string)
    } catch (error) {
      throw new CertificateAuthorityError(`${keyPath}: ${(error as Error).message}`)
    }
    if (!certificate.checkPrivateKey(key))
      throw new CertificateAuthorityError(`${keyPath}: does not match ${certificatePath}`)
    if (key.asymmetricKeyType !== 'rsa') {
      throw new CertificateAuthorityError(
        `${keyPath}: a ${key.asymmetricKeyType} key: node-forge signs with RSA keys only (see 'outrigger ca --help')`,
      )
    }
    const pkcs1 = key.export({ type: 'pkcs1', format: 'pem' }).toString()
    if (rootPem !== undefined) {
      try {
        new X509Certificate(rootPem)
      } catch (error) {
        throw new CertificateAuthorityError(
          `${join(directory, CA_FILES.rootCert)}: ${(error as Error).message}`,
        )
      }
    }
    return new CertificateAuthority(
      certificatePem as string,
      pkcs1,
      rootPem ?? (certificatePem as string),
      chainPem,
    )
  }

  /**
   * Issues a workload certificate for `spiffeId` (Istio's form, validated) valid for `ttlMs` from now, with
   * a new RSA 2048 key. As Istio's CA (IstioCA.minTTL), the lifetime is cut to the CA's own expiry.
   */
  async issue(spiffeId: string, ttlMs: number = DEFAULT_WORKLOAD_TTL_MS): Promise<IssuedCertificate> {
    const id = parseWorkloadSpiffeId(spiffeId)
    if (!(ttlMs > 0)) throw new CertificateAuthorityError('the certificate lifetime must be positive')
    const keys = await generateRsaKeyPair()
    const now = Date.now()
    const notBefore = new Date(now - CLOCK_SKEW_GRACE_MS)
    const notAfter = new Date(Math.min(now + ttlMs, this.#notAfter.getTime()))
    const leaf = await signWorkloadCertificate({
      publicKeyPem: keys.publicKey,
      spiffeId: id.uri,
      notBefore,
      notAfter,
      signer: this.#signer,
    })
    return {
      privateKey: keys.privateKey,
      certChain: `${leaf}${this.#chainAfterLeaf}`,
      rootCert: this.rootCertPem,
      notBefore,
      notAfter,
    }
  }
}
