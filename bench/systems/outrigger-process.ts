// Starts a real `outrigger run` process from a bootstrap and Istio resources written into a scratch directory.

import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { missingNodeFlags } from '../../src/cli/node-settings.ts'
import { type Child, startChild } from '../support/children.ts'
import { get, waitFor } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'

export const repoRoot = resolve(import.meta.dirname, '..', '..')
// The compiled build (npm run bench builds it first): what production runs, without the type-stripping cost.
const mainScript = join(repoRoot, 'dist', 'main.js')
/** The V8 flags production ran with before the proxy applied its own (src/cli/node-settings.ts); the node floors' too. */
export const productionNodeFlags = ['--max-semi-space-size=8']
/** The node flags this checkout's proxy gives itself outside a container (src/cli/node-settings.ts). */
export const proxyNodeFlags: readonly string[] = missingNodeFlags([], '', undefined)

/**
 * The node flags a build is started with: none for a build that applies its own settings (as `npm start`
 * and the image start it), the old production flags for a build from before. Under a launcher
 * (valgrind) the process must not re-execute itself out of it: this checkout's settings given as flags,
 * and the settings off.
 */
function nodeFlagsFor(
  mainScript: string,
  launcher: boolean,
): { flags: readonly string[]; env: NodeJS.ProcessEnv } {
  if (launcher) return { flags: proxyNodeFlags, env: { OUTRIGGER_NODE_SETTINGS: 'off' } }
  const appliesOwn = existsSync(join(dirname(mainScript), 'cli', 'node-settings.js'))
  return { flags: appliesOwn ? [] : productionNodeFlags, env: {} }
}

export interface OutriggerOptions {
  /** A directory name under the run's scratch directory. */
  readonly name: string
  readonly workDir: string
  /** File name → YAML text, written into `<dir>/istio/`. */
  readonly resources: Record<string, string>
  readonly readyTimeoutMs?: number
  /** The entry script; default this checkout's dist/main.js. */
  readonly mainScript?: string
  /** Worker processes (`--concurrency N`); undefined runs one process without a supervisor. */
  readonly concurrency?: number
  /** A command and its arguments that node runs under (valgrind for bench/micro/instructions.ts). */
  readonly launcher?: readonly string[]
  /** V8 / Node flags after the production ones. */
  readonly nodeFlags?: readonly string[]
  /** The process environment; default the bench's own. */
  readonly env?: NodeJS.ProcessEnv
  /** YAML appended to the bootstrap (the workload certificate's `tls` of the mTLS pair). */
  readonly extraBootstrap?: string
}

export interface OutriggerProcess {
  readonly child: Child
  readonly dir: string
  readonly adminPort: number
  /** The stats port (`/stats/prometheus`, what Prometheus scrapes in a pod). */
  readonly statsPort: number
  /** Milliseconds from spawn until /healthz/ready answered 200 (includes Node start-up and module loading). */
  readonly startupMs: number
  stop(): Promise<void>
}

/**
 * No access log and no tracing: the bench compares the forwarding path with nginx and haproxy, which
 * also run without logs (Istio's default mesh config has the access log off too).
 */
export async function startOutrigger(opts: OutriggerOptions): Promise<OutriggerProcess> {
  const dir = join(opts.workDir, opts.name)
  await mkdir(join(dir, 'istio'), { recursive: true })
  const [adminPort, healthPort, statsPort] = await freePorts(3)
  const bootstrap = `# Written by bench/systems/outrigger-process.ts
node:
  workload: bench
  namespace: default
  labels: {app: bench}
listeners:
  admin: {port: ${adminPort}, address: 127.0.0.1}
  health: {port: ${healthPort}, address: 127.0.0.1}
  stats: {port: ${statsPort}, address: 127.0.0.1}
capture: none
resources: [./istio/]
terminationDrainDuration: 1s
${opts.extraBootstrap ?? ''}`
  await writeFile(join(dir, 'bootstrap.yaml'), bootstrap)
  for (const [file, text] of Object.entries(opts.resources)) await writeFile(join(dir, 'istio', file), text)
  const started = performance.now()
  const [command, ...launcherArgs] = [...(opts.launcher ?? []), process.execPath]
  const script = opts.mainScript ?? mainScript
  const own = nodeFlagsFor(script, opts.launcher !== undefined)
  const child = startChild(
    `outrigger ${opts.name}`,
    command,
    [
      ...launcherArgs,
      ...own.flags,
      ...(opts.nodeFlags ?? []),
      script,
      'run',
      '--config',
      join(dir, 'bootstrap.yaml'),
      ...(opts.concurrency === undefined ? [] : ['--concurrency', String(opts.concurrency)]),
    ],
    { env: { ...(opts.env ?? process.env), ...own.env } },
  )
  await waitFor(
    async () => (await get(healthPort, '/healthz/ready', undefined, 1_000)).status === 200,
    opts.readyTimeoutMs ?? 30_000,
    () => child.output(),
    child.exited,
  )
  const startupMs = performance.now() - started
  return { child, dir, adminPort, statsPort, startupMs, stop: () => child.stop(5_000) }
}

/** A Sidecar with one ingress listener forwarding to 127.0.0.1:`upstreamPort`. */
export function ingressSidecar(port: number, upstreamPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  ingress:
    - port: {number: ${port}, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:${upstreamPort}
`
}

/** A Sidecar with one egress listener on 127.0.0.1:`port` that sees every service in its namespace. */
export function egressSidecar(port: number): string {
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
    - port: {number: ${port}, protocol: HTTP, name: http}
      bind: 127.0.0.1
      hosts: ["./*"]
`
}

/** A ServiceEntry `host` on the egress port whose STATIC endpoints are 127.0.0.1 on each of `targetPorts`. */
export function serviceEntry(
  name: string,
  host: string,
  port: number,
  targetPorts: number | readonly number[],
): string {
  const endpoints = (typeof targetPorts === 'number' ? [targetPorts] : targetPorts)
    .map((p) => `{address: 127.0.0.1, ports: {http: ${p}}}`)
    .join(', ')
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  endpoints: [${endpoints}]
`
}
