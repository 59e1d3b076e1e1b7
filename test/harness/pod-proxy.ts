// Runs Outrigger in a namespace pod as the proxy user, from a bootstrap and resources written to a directory that user can read.

import type { ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Pod, proxyUser, type RunAs } from './netns.ts'
import { mainScript } from './proxy-process.ts'

export interface PodProxy {
  readonly dir: string
  readonly child: ChildProcess
  output(): string
  /** Replaces one resource file (the proxy reloads it). */
  writeResource(name: string, yaml: string): void
  /** GET of a path on the proxy's admin port (127.0.0.1:15000 in the pod), from inside the pod. */
  admin(path: string): string
  remove(): void
}

/** Makes `dir` and everything under it readable by every user (the proxy runs as uid 1337). */
export function openToAll(dir: string): void {
  chmodSync(dir, 0o755)
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) openToAll(path)
    else chmodSync(path, 0o644)
  }
}

/**
 * Starts the proxy in `pod` with `bootstrap` (YAML; `resources: [./istio/]` is added) and `resources`
 * (file name → YAML); resolves once /healthz/ready answers 200 inside the pod.
 */
export async function startPodProxy(
  pod: Pod,
  bootstrap: string,
  resources: Record<string, string>,
  as: RunAs = proxyUser(),
): Promise<PodProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-pod-'))
  mkdirSync(join(dir, 'istio'))
  writeFileSync(join(dir, 'bootstrap.yaml'), `${bootstrap}\nresources: [./istio/]\n`)
  for (const [name, text] of Object.entries(resources)) writeFileSync(join(dir, 'istio', name), text)
  openToAll(dir)
  const child = pod.node([mainScript, 'run', '--config', join(dir, 'bootstrap.yaml')], {}, as)
  let output = ''
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const proxy: PodProxy = {
    dir,
    child,
    output: () => output,
    writeResource(name, yaml) {
      const path = join(dir, 'istio', name)
      writeFileSync(path, yaml)
      chmodSync(path, 0o644)
    },
    admin: (path) => pod.exec('curl', ['-s', `http://127.0.0.1:15000${path}`]),
    remove() {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`proxy in ${pod.name} exited ${child.exitCode}:\n${output}`)
    let status = ''
    try {
      status = pod.exec('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        'http://127.0.0.1:15021/healthz/ready',
      ])
    } catch {}
    if (status === '200') return proxy
    await new Promise((r) => setTimeout(r, 200))
  }
  proxy.remove()
  throw new Error(`proxy in ${pod.name} not ready:\n${output}`)
}
