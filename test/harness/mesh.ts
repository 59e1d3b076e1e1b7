// A mesh of real sidecars for scenario tests: certificates from the real `outrigger ca`, mesh services and ISTIO_MUTUAL rules.

import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as istio from './istio.ts'
import { mainScript } from './proxy-process.ts'

/** Runs the real CLI; fails the test with its stderr when it does not exit 0. */
export function outrigger(...args: string[]): void {
  const run = spawnSync(process.execPath, [mainScript, ...args], { encoding: 'utf8', timeout: 60_000 })
  if (run.status !== 0) throw new Error(`outrigger ${args.join(' ')} exited ${run.status}: ${run.stderr}`)
}

/** `outrigger ca issue` of `spiffe` from the CA in `caDir` into `out`; returns `out`. */
export function issueCertificate(caDir: string, spiffe: string, out: string): string {
  outrigger('ca', 'issue', '--ca', caDir, '--spiffe', spiffe, '--out', out)
  return out
}

/** A test's own CA from `outrigger ca init`, in a temporary directory that also holds the certificates it issues. */
export interface MeshCa {
  /** The temporary directory: the CA in `ca/`, each issued certificate in a folder of its own. */
  readonly dir: string
  /** The CA's folder, as `outrigger ca init --out` wrote it. */
  readonly caDir: string
  /** `outrigger ca issue` of `spiffe` into `<dir>/<name>`; returns that folder (for filesTls). */
  issue(spiffe: string, name: string): string
  /** The bootstrap `tls` block with which a proxy issues (and renews, every half `ttl`) its own certificate from this CA. */
  builtInTls(ttl?: string): string
  remove(): Promise<void>
}

/** A new CA in a new temporary directory named after `prefix` (e.g. `outrigger-mesh-`). */
export async function createMeshCa(prefix: string): Promise<MeshCa> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const caDir = join(dir, 'ca')
  try {
    outrigger('ca', 'init', '--out', caDir)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return {
    dir,
    caDir,
    issue: (spiffe, name) => issueCertificate(caDir, spiffe, join(dir, name)),
    builtInTls: (ttl) => `tls:\n  ca: ${caDir}\n${ttl === undefined ? '' : `  ttl: ${ttl}\n`}`,
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}

/** The bootstrap `tls` block reading the workload certificate files `outrigger ca issue` wrote to `certs`. */
export function filesTls(certs: string, rootCert = join(certs, 'root-cert.pem')): string {
  return `tls:
  certChain: ${join(certs, 'cert-chain.pem')}
  privateKey: ${join(certs, 'key.pem')}
  rootCert: ${rootCert}
`
}

/** A MESH_INTERNAL service on `servicePort` whose one endpoint is a server sidecar's ingress `target`. */
export function meshService(
  name: string,
  servicePort: number,
  protocol: string,
  target: number,
  endpoint: { serviceAccount?: string; labels?: Record<string, string> } = { serviceAccount: 'reviews' },
): string {
  return istio.serviceEntry({
    name,
    ports: [{ number: servicePort, name: 'p', protocol }],
    endpoints: [{ address: '127.0.0.1', ports: { p: target }, ...endpoint } as istio.WorkloadEndpoint],
    spec: { location: 'MESH_INTERNAL' },
  })
}

/** A DestinationRule sending `host`'s traffic over Istio mTLS, with `extra` traffic policy fields. */
export const istioMutual = (host: string, extra: Record<string, unknown> = {}): string =>
  istio.destinationRule({ host, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' }, ...extra } })

/**
 * A STRICT PeerAuthentication (istio/api security/v1beta1/peer_authentication.proto): namespace-wide (`default`)
 * without `app`, else for the workloads labelled `app`, with `permissivePorts` relaxed by portLevelMtls.
 */
export function strictMtls(app?: string, permissivePorts: readonly number[] = []): string {
  const selector = app === undefined ? '' : `  selector: {matchLabels: {app: ${app}}}\n`
  const portLevel =
    permissivePorts.length === 0
      ? ''
      : `  portLevelMtls:\n${permissivePorts.map((port) => `    ${port}: {mode: PERMISSIVE}\n`).join('')}`
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${app ?? 'default'}, namespace: default}
spec:
${selector}  mtls: {mode: STRICT}
${portLevel}`
}

/**
 * Starts a proxy on ports `start` picks, again with fresh ones (up to 3 times) when one was taken between
 * picking and binding: ports are released after picking, and on a busy machine another proxy may get one.
 */
export async function retryingPortClash<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start()
    } catch (err) {
      if (attempt === 3 || !/already used|EADDRINUSE/.test((err as Error).message)) throw err
    }
  }
}
