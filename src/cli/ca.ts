// `outrigger ca init | issue`: a root CA in a directory, and SPIFFE workload certificates in Istio's file names.

import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  CA_FILES,
  CertificateAuthority,
  CertificateAuthorityError,
  DEFAULT_WORKLOAD_TTL_MS,
  WORKLOAD_FILES,
  writeWorkloadFiles,
} from '../ca/certificate-authority.ts'
import { parseWorkloadSpiffeId, SpiffeIdError } from '../ca/spiffe-id.ts'
import { parseDurationMs } from '../config/duration.ts'

export const caUsage = `usage:
  outrigger ca init --out <dir> [--trust-domain cluster.local] [--ttl 87600h] [--key-type rsa]
      makes a root CA: ${CA_FILES.certificate}, ${CA_FILES.privateKey} (mode 0600) and ${CA_FILES.rootCert}
      (Istio's cacerts names; an existing ${CA_FILES.privateKey} is never overwritten)
  outrigger ca issue --ca <dir> --spiffe spiffe://<trust domain>/ns/<ns>/sa/<sa> --out <dir> [--ttl 24h] [--key-type rsa]
      issues a workload certificate: ${WORKLOAD_FILES.privateKey} (mode 0600), ${WORKLOAD_FILES.certChain}, ${WORKLOAD_FILES.rootCert}
      (istio-agent's names, which the bootstrap's tls keys read). --ca also takes Istio's plug-in CA
      directory (${CA_FILES.certificate}, ${CA_FILES.privateKey}, ${CA_FILES.rootCert}, ${CA_FILES.certChain}).
Keys are RSA 2048, as istio-agent's default. --key-type ecdsa is refused: node-forge, which builds and
signs the certificates, has no ECDSA.
Exit codes: 0 done, 1 the CA directory cannot be made or used, 2 bad arguments.
`

/** A bad argument: the message goes to stderr with the usage, and the exit code is 2. */
class UsageError extends Error {}

function durationArgument(
  name: string,
  text: string | undefined,
  fallback: number | undefined,
): number | undefined {
  if (text === undefined) return fallback
  let ms: number
  try {
    ms = parseDurationMs(text)
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`)
  }
  if (ms < 1000) throw new UsageError(`--${name} ${text}: must be at least 1s`)
  return ms
}

function checkKeyType(keyType: string | undefined): void {
  if (keyType === undefined || keyType === 'rsa') return
  if (keyType === 'ecdsa') {
    throw new UsageError(
      '--key-type ecdsa is not supported: node-forge, which builds and signs the certificates, has no ECDSA; use rsa (the default, RSA 2048 as istio-agent)',
    )
  }
  throw new UsageError(`--key-type ${keyType}: expected rsa`)
}

function required(name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`)
  return value
}

async function init(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      out: { type: 'string' },
      'trust-domain': { type: 'string' },
      ttl: { type: 'string' },
      'key-type': { type: 'string' },
    },
  })
  checkKeyType(values['key-type'])
  const directory = required('out', values.out)
  const trustDomain = values['trust-domain'] ?? 'cluster.local'
  try {
    parseWorkloadSpiffeId(`spiffe://${trustDomain}/ns/a/sa/b`)
  } catch {
    throw new UsageError(`--trust-domain '${trustDomain}': only lowercase letters, digits, '.', '-' and '_'`)
  }
  await CertificateAuthority.init(directory, {
    trustDomain,
    ttlMs: durationArgument('ttl', values.ttl, undefined),
  })
  out.write(
    `root CA for ${trustDomain} written to ${directory}: ${CA_FILES.certificate}, ${CA_FILES.privateKey}, ${CA_FILES.rootCert}\n`,
  )
}

async function issue(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      ca: { type: 'string' },
      spiffe: { type: 'string' },
      out: { type: 'string' },
      ttl: { type: 'string' },
      'key-type': { type: 'string' },
    },
  })
  checkKeyType(values['key-type'])
  const caDirectory = required('ca', values.ca)
  const spiffeId = required('spiffe', values.spiffe)
  const directory = required('out', values.out)
  try {
    parseWorkloadSpiffeId(spiffeId)
  } catch (error) {
    if (error instanceof SpiffeIdError) throw new UsageError(`--spiffe: ${error.message}`)
    throw error
  }
  const ttlMs = durationArgument('ttl', values.ttl, DEFAULT_WORKLOAD_TTL_MS) as number
  const ca = await CertificateAuthority.load(caDirectory)
  const issued = await ca.issue(spiffeId, ttlMs)
  await writeWorkloadFiles(directory, issued)
  out.write(
    `${spiffeId} valid until ${issued.notAfter.toISOString()} written to ${join(directory, WORKLOAD_FILES.certChain)} (with ${WORKLOAD_FILES.privateKey}, ${WORKLOAD_FILES.rootCert})\n`,
  )
}

/** Runs `outrigger ca <subcommand> …`; returns the exit code. */
export async function ca(
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const [subcommand, ...rest] = argv
  try {
    switch (subcommand) {
      case 'init':
        await init(rest, out)
        return 0
      case 'issue':
        await issue(rest, out)
        return 0
      case undefined:
      case 'help':
      case '--help':
        out.write(caUsage)
        return 0
      default:
        throw new UsageError(`unknown ca command '${subcommand}'`)
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (error instanceof UsageError || code?.startsWith('ERR_PARSE_ARGS') === true) {
      err.write(`outrigger ca: ${(error as Error).message}\n${caUsage}`)
      return 2
    }
    if (error instanceof CertificateAuthorityError) {
      err.write(`outrigger ca: ${error.message}\n`)
      return 1
    }
    throw error
  }
}
