// A mesh of real sidecars for scenario tests: certificates from the real `outrigger ca`, mesh services and ISTIO_MUTUAL rules.

import { spawnSync } from 'node:child_process'
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
