// A pod's processes for the namespace mesh test: its app, its client driver, its Outrigger sidecar with capture, and commands run inside it.

import type { ChildProcess } from 'node:child_process'
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { installCapture as installCaptureWith } from '../harness/capture-install.ts'
import type { Pod, RunAs } from '../harness/netns.ts'
import { mainScript } from '../harness/proxy-process.ts'
import type { ClientCommand } from './client-app.ts'

const here = import.meta.dirname

/** What a command run in a pod did. */
export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `file args` in the pod without blocking the test's event loop (the load keeps running meanwhile). */
export function runInPod(pod: Pod, file: string, args: readonly string[]): Promise<Ran> {
  const child = pod.spawn(file, args)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })))
}

/** GET `url` from inside the pod (curl, as a kubelet probe or a Prometheus scrape would reach it). */
export async function curlInPod(pod: Pod, url: string): Promise<{ status: number; body: string }> {
  const ran = await runInPod(pod, 'curl', ['-s', '--max-time', '3', '-w', '\n%{http_code}', url])
  const cut = ran.stdout.lastIndexOf('\n')
  return { status: Number(ran.stdout.slice(cut + 1)) || 0, body: ran.stdout.slice(0, cut) }
}

/** Resolves when `child` wrote `marker` to stdout; rejects with its output when it exits first or takes 15 s. */
function waitForOutput(child: ChildProcess, marker: string, what: string): Promise<void> {
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s: ${output}`)), 15_000)
    const onData = (d: Buffer): void => {
      output += d.toString()
      if (output.includes(marker)) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited with ${code}: ${output}`))
    })
  })
}

/** Starts the pod's app (test/mesh/pod-app.ts) as root, like any container; resolves once it listens. */
export async function startApp(pod: Pod, version: string): Promise<ChildProcess> {
  const app = pod.node([join(here, 'pod-app.ts'), pod.name, version])
  await waitForOutput(app, 'listening', `${pod.name}'s app`)
  return app
}

/** Resolves with the exit code once `child` has exited (at once if it already has). */
export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

/** The client app in a pod (test/mesh/client-app.ts), driven by one JSON command per line. */
export class ClientDriver {
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>()
  #nextId = 1
  #stderr = ''

  constructor(pod: Pod) {
    this.#child = pod.node([join(here, 'client-app.ts')], { stdio: ['pipe', 'pipe', 'pipe'] })
    let buffered = ''
    this.#child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString()
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        const answer = JSON.parse(line) as { id: number; result?: unknown; error?: string }
        const waiter = this.#pending.get(answer.id)
        this.#pending.delete(answer.id)
        if (answer.error !== undefined) waiter?.reject(new Error(answer.error))
        else waiter?.resolve(answer.result)
      }
    })
    this.#child.stderr?.on('data', (d: Buffer) => {
      this.#stderr += d.toString()
    })
    this.#child.once('exit', (code) => {
      for (const waiter of this.#pending.values())
        waiter.reject(new Error(`client app exited ${code}: ${this.#stderr}`))
      this.#pending.clear()
    })
  }

  /** Ends the app (its stdin closes) and resolves once it has exited. */
  close(): Promise<number | null> {
    this.#child.stdin?.end()
    return exitOf(this.#child)
  }

  /** Sends one command and resolves with its answer. */
  call<T>(command: DistributiveOmit<ClientCommand, 'id'>): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.#child.stdin?.write(`${JSON.stringify({ ...command, id })}\n`)
    })
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** Makes `path` and everything below it readable by the proxy's uid (mkdtemp makes 0700 directories). */
export async function openToProxy(path: string): Promise<void> {
  const info = await stat(path)
  await chmod(path, info.isDirectory() ? 0o755 : 0o644)
  if (!info.isDirectory()) return
  for (const name of await readdir(path)) await openToProxy(join(path, name))
}

/** Who a sidecar serves (the bootstrap's node block). */
export interface Workload {
  readonly workload: string
  readonly serviceAccount: string
  readonly labels: Readonly<Record<string, string>>
}

/** Runs `outrigger capture install` in the pod with the injector's flags and DNS capture, as the pod's init container does. */
export function installCapture(pod: Pod): Ran {
  return installCaptureWith(pod, ['--redirect-dns'])
}

/** The bootstrap of a pod's sidecar: Istio's port map, capture by iptables, files from `dir`. */
export function captureBootstrap(workload: Workload, drain: string): string {
  const labels = Object.entries(workload.labels)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')
  return `node:
  workload: ${workload.workload}
  namespace: default
  serviceAccount: ${workload.serviceAccount}
  labels: {${labels}}
listeners:
  outbound: {port: 15001}
  inbound: {port: 15006}
  admin: {port: 15000, address: 127.0.0.1}
  stats: {port: 15090}
  health: {port: 15021}
capture: iptables
resources: [./istio/]
tls:
  certChain: ./certs/cert-chain.pem
  privateKey: ./certs/key.pem
  rootCert: ./certs/root-cert.pem
terminationDrainDuration: ${drain}
`
}

/** Outrigger running in a pod as the proxy user, from a directory holding its bootstrap, resources and certificates. */
export class PodSidecar {
  readonly pod: Pod
  readonly dir: string
  readonly child: ChildProcess
  #stderr = ''

  private constructor(pod: Pod, dir: string, child: ChildProcess) {
    this.pod = pod
    this.dir = dir
    this.child = child
    child.stderr?.on('data', (d: Buffer) => {
      this.#stderr += d.toString()
    })
    child.stdout?.resume()
  }

  /**
   * Writes the bootstrap and resources into `dir` (whose `certs/` `outrigger ca issue` filled), starts the
   * proxy as `as` in the pod and waits until its health port answers ready.
   */
  static async start(
    pod: Pod,
    dir: string,
    as: RunAs,
    bootstrap: string,
    resources: Readonly<Record<string, string>>,
  ): Promise<PodSidecar> {
    await mkdir(join(dir, 'istio'), { recursive: true })
    await writeFile(join(dir, 'bootstrap.yaml'), bootstrap)
    for (const [name, yaml] of Object.entries(resources)) await writeFile(join(dir, 'istio', name), yaml)
    await openToProxy(dir)
    const child = pod.node([mainScript, 'run', '--config', join(dir, 'bootstrap.yaml')], {}, as)
    const sidecar = new PodSidecar(pod, dir, child)
    await sidecar.#waitReady()
    return sidecar
  }

  stderr(): string {
    return this.#stderr
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + 45_000
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null)
        throw new Error(`${this.pod.name}'s sidecar exited ${this.child.exitCode}: ${this.#stderr}`)
      if ((await curlInPod(this.pod, 'http://127.0.0.1:15021/healthz/ready')).status === 200) return
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`${this.pod.name}'s sidecar not ready in 45 s: ${this.#stderr}`)
  }

  /** Replaces one resource file (the proxy reloads it). */
  async writeResource(name: string, yaml: string): Promise<void> {
    const file = join(this.dir, 'istio', name)
    await writeFile(file, yaml)
    await chmod(file, 0o644)
  }

  /** The proxy's Prometheus text from its stats port, scraped inside the pod. */
  async scrape(): Promise<string> {
    return (await curlInPod(this.pod, 'http://127.0.0.1:15090/stats/prometheus')).body
  }

  /** GET an admin path (admin listens on the pod's 127.0.0.1:15000). */
  async admin(path: string): Promise<string> {
    return (await curlInPod(this.pod, `http://127.0.0.1:15000${path}`)).body
  }

  /** SIGTERM, as the kubelet sends it; resolves with the exit code. */
  terminate(): Promise<number | null> {
    this.child.kill('SIGTERM')
    return exitOf(this.child)
  }
}
