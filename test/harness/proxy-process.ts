// Starts a real `outrigger run` process from a bootstrap and resource files written to a temp directory.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { freePorts } from './ports.ts'

export const repoRoot = resolve(import.meta.dirname, '..', '..')
export const mainScript = join(repoRoot, 'src', 'main.ts')

export interface ProxyOptions {
  /** File name → YAML text, written into `<dir>/istio/`. */
  readonly resources: Record<string, string>
  readonly namespace?: string
  /** The bootstrap's node.serviceAccount (the SPIFFE ID's `sa/` of an issued certificate). */
  readonly serviceAccount?: string
  readonly labels?: Record<string, string>
  /** The bootstrap's node.locality (`region/zone/subzone`). */
  readonly locality?: string
  readonly drain?: string
  /** Paths the bootstrap's `resources` lists instead of `./istio/` (e.g. files in a mounted volume). */
  readonly resourcePaths?: readonly string[]
  /** Environment variables added to the proxy process's (e.g. NODE_OPTIONS). */
  readonly env?: Record<string, string>
  /** Extra bootstrap YAML appended verbatim. */
  readonly extraBootstrap?: string
  /** false: resolve once the process runs, without waiting for /healthz/ready (default true). */
  readonly waitReady?: boolean
  /**
   * A command the proxy is started through, its arguments before node's (e.g. `sh -c '… exec "$@"' sh`, to
   * join a cgroup before node starts).
   */
  readonly launcher?: readonly string[]
  /** Extra entries of the bootstrap's `listeners` block (indented YAML lines, e.g. `  inbound: {port: 15006}`). */
  readonly extraListeners?: string
  /** node, its flags and the entry script, before `run --config …` (default node and src/main.ts, no flags). */
  readonly entry?: readonly string[]
}

export interface ProxyProcess {
  readonly dir: string
  readonly adminPort: number
  readonly healthPort: number
  /** The stats port (GET /stats/prometheus). */
  readonly statsPort: number
  readonly child: ChildProcess
  /** Everything the process wrote to stderr so far. */
  stderr(): string
  stdout(): string
  admin(path: string, init?: RequestInit): Promise<Response>
  writeResource(name: string, yaml: string): Promise<void>
  /** Resolves when the process exits, with its exit code. */
  readonly exited: Promise<number | null>
  stop(): Promise<number | null>
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'outrigger-test-'))
  const [adminPort, healthPort, statsPort] = await freePorts(3)
  const labels = Object.entries(opts.labels ?? { app: 'test' })
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')
  const bootstrap = `node:
  workload: test
  namespace: ${opts.namespace ?? 'default'}
  serviceAccount: ${opts.serviceAccount ?? 'default'}
  labels: {${labels}}
  locality: '${opts.locality ?? ''}'
listeners:
  admin: {port: ${adminPort}, address: 127.0.0.1}
  health: {port: ${healthPort}, address: 127.0.0.1}
  stats: {port: ${statsPort}, address: 127.0.0.1}
${opts.extraListeners ?? ''}resources: ${JSON.stringify(opts.resourcePaths ?? ['./istio/'])}
terminationDrainDuration: ${opts.drain ?? '5s'}
${opts.extraBootstrap ?? ''}`
  await writeFile(join(dir, 'bootstrap.yaml'), bootstrap)
  const { mkdir } = await import('node:fs/promises')
  await mkdir(join(dir, 'istio'))
  for (const [name, text] of Object.entries(opts.resources)) await writeFile(join(dir, 'istio', name), text)
  const nodeArgv = [
    ...(opts.entry ?? [process.execPath, mainScript]),
    'run',
    '--config',
    join(dir, 'bootstrap.yaml'),
  ]
  const [command, ...args] = [...(opts.launcher ?? []), ...nodeArgv] as [string, ...string[]]
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  })
  let err = ''
  let out = ''
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  const proxy: ProxyProcess = {
    dir,
    adminPort,
    healthPort,
    statsPort,
    child,
    stderr: () => err,
    stdout: () => out,
    admin: (path, init) => fetch(`http://127.0.0.1:${adminPort}${path}`, init),
    writeResource: (name, yaml) => writeFile(join(dir, 'istio', name), yaml),
    exited,
    async stop() {
      // POST /quitquitquit exits at once, as Envoy's (SIGTERM would hold outbound listeners open for the
      // drain duration); SIGTERM when admin does not answer.
      if (child.exitCode === null && child.signalCode === null) {
        await fetch(`http://127.0.0.1:${adminPort}/quitquitquit`, {
          method: 'POST',
          signal: AbortSignal.timeout(2_000),
        })
          .then((res) => res.arrayBuffer())
          .catch(() => child.kill('SIGTERM'))
      }
      const code = await exited
      await rm(dir, { recursive: true, force: true })
      return code
    },
  }
  if (opts.waitReady !== false) {
    try {
      await waitReady(proxy)
    } catch (error) {
      // Not ready: the caller gets no handle to stop it, so it is stopped here (no process outlives its test).
      child.kill('SIGKILL')
      await exited
      await rm(dir, { recursive: true, force: true })
      throw error
    }
  }
  return proxy
}

/** Polls /healthz/ready until 200, failing with the proxy's stderr if it exits or takes over 15 s. */
export async function waitReady(proxy: ProxyProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exitCode: number | null | undefined
  void proxy.exited.then((c) => {
    exitCode = c
  })
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`proxy exited with ${exitCode}:\n${proxy.stderr()}`)
    try {
      const res = await fetch(`http://127.0.0.1:${proxy.healthPort}/healthz/ready`)
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`proxy not ready after ${timeoutMs} ms:\n${proxy.stderr()}`)
}

/** Polls until `check` passes (reloads are asynchronous). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`condition not met within ${timeoutMs} ms`)
}
