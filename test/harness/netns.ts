// Network namespaces for tests: "pods" joined by a bridge in a namespace of their own, removed even when a test fails or is interrupted.

import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process'
import { repoRoot } from './proxy-process.ts'

/** Why a test that needs network namespaces is skipped, or undefined when it can run (root on Linux). */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces and iptables need root (CI runs as root)'
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' })
    execFileSync('iptables', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'ip and iptables are not installed (scripts/install-test-tools.sh installs them)'
  }
  return undefined
}

/** Istio's proxy uid and gid (istio-iptables --proxy-uid / --proxy-gid). */
export const PROXY_UID = 1337
export const PROXY_GID = 1337

/**
 * The user the proxy runs as in namespace tests: uid and gid 1337 as in a pod, or, when uid 1337 cannot
 * read the checkout (a clone under /root), root with gid 1337, which capture excludes just the same
 * (istio-iptables matches `--gid-owner` beside `--uid-owner`).
 */
export function proxyUser(): RunAs {
  try {
    execFileSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(repoRoot)}, 4)`], {
      uid: PROXY_UID,
      gid: PROXY_GID,
      stdio: 'ignore',
    })
    return { uid: PROXY_UID, gid: PROXY_GID }
  } catch {
    return { uid: 0, gid: PROXY_GID }
  }
}

/** A user to run a pod's process as, and the capabilities it keeps (names as setpriv takes them). */
export interface RunAs {
  readonly uid: number
  readonly gid: number
  readonly capabilities?: readonly string[]
}

function capabilityArgs(capabilities: readonly string[]): string[] {
  if (capabilities.length === 0) return []
  const list = capabilities.map((c) => `+${c}`).join(',')
  return [`--inh-caps=${list}`, `--ambient-caps=${list}`]
}

/** Every namespace this process made and has not removed yet: removed on exit and on SIGINT/SIGTERM. */
const liveNamespaces = new Set<string>()
const liveChildren = new Set<ChildProcess>()
let exitHooked = false

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function deleteNamespace(name: string): void {
  try {
    // Kill what still runs inside first, or the namespace lives on after its name is gone.
    const pids = ip('netns', 'pids', name).split('\n').filter(Boolean)
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {}
    }
    ip('netns', 'del', name)
  } catch {}
  liveNamespaces.delete(name)
}

function removeEverything(): void {
  for (const child of liveChildren) child.kill('SIGKILL')
  liveChildren.clear()
  for (const name of [...liveNamespaces]) deleteNamespace(name)
}

function hookExit(): void {
  if (exitHooked) return
  exitHooked = true
  process.once('exit', removeEverything)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      removeEverything()
      process.kill(process.pid, signal)
    })
  }
}

/** Removes namespaces left by test processes that died without cleaning up (named `or-<pid>-…`). */
function removeStaleNamespaces(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const match = /^(or-(\d+)-\S+)/.exec(line)
    if (match === null) continue
    const pid = Number(match[2])
    if (pid === process.pid) continue
    try {
      process.kill(pid, 0)
    } catch {
      deleteNamespace(match[1])
    }
  }
}

let labCount = 0

/**
 * A small network: a bridge in its own namespace and one namespace per pod on it, each with `eth0`
 * (IPv4 10.44.0.<n>/24 and IPv6 fd00:44::<n>/64) and loopback up. Nothing is made in the host's namespace.
 */
export class NetnsLab {
  readonly prefix: string
  readonly bridgeNamespace: string
  readonly pods: Pod[] = []

  constructor(tag: string) {
    hookExit()
    removeStaleNamespaces()
    this.prefix = `or-${process.pid}-${labCount++}-${tag}`
    this.bridgeNamespace = `${this.prefix}-br`
    ip('netns', 'add', this.bridgeNamespace)
    liveNamespaces.add(this.bridgeNamespace)
    ip('-n', this.bridgeNamespace, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', this.bridgeNamespace, 'link', 'set', 'br0', 'up')
    ip('-n', this.bridgeNamespace, 'link', 'set', 'lo', 'up')
  }

  /** Adds a pod named `name` with the next address on the bridge. */
  addPod(name: string): Pod {
    const index = this.pods.length + 2
    const namespace = `${this.prefix}-${name}`
    ip('netns', 'add', namespace)
    liveNamespaces.add(namespace)
    const port = `p${index}`
    const peer = ['peer', 'name', 'eth0', 'netns', namespace]
    ip('-n', this.bridgeNamespace, 'link', 'add', port, 'type', 'veth', ...peer)
    ip('-n', this.bridgeNamespace, 'link', 'set', port, 'master', 'br0')
    ip('-n', this.bridgeNamespace, 'link', 'set', port, 'up')
    const pod = new Pod(name, namespace, `10.44.0.${index}`, `fd00:44::${index}`)
    ip('-n', namespace, 'link', 'set', 'lo', 'up')
    ip('-n', namespace, 'addr', 'add', `${pod.ipv4}/24`, 'dev', 'eth0')
    ip('-n', namespace, 'addr', 'add', `${pod.ipv6}/64`, 'dev', 'eth0', 'nodad')
    ip('-n', namespace, 'link', 'set', 'eth0', 'up')
    this.pods.push(pod)
    return pod
  }

  /** Kills what runs in the lab's namespaces and deletes them; safe to call twice. */
  remove(): void {
    for (const pod of this.pods) pod.killAll()
    for (const pod of this.pods) deleteNamespace(pod.namespace)
    deleteNamespace(this.bridgeNamespace)
  }
}

/** One network namespace standing for a pod. */
export class Pod {
  readonly name: string
  readonly namespace: string
  readonly ipv4: string
  readonly ipv6: string
  readonly #children = new Set<ChildProcess>()

  constructor(name: string, namespace: string, ipv4: string, ipv6: string) {
    this.name = name
    this.namespace = namespace
    this.ipv4 = ipv4
    this.ipv6 = ipv6
  }

  /** Runs a command in the pod and returns its stdout; throws with its stderr when it fails. */
  exec(file: string, args: readonly string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.namespace, file, ...args], {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
  }

  /**
   * Starts a process in the pod, killed when the lab is removed. With `as`, it runs as that uid and gid
   * (setpriv, after entering the namespace as root) with the ambient capabilities named (e.g. `net_admin`).
   */
  spawn(file: string, args: readonly string[], options: SpawnOptions = {}, as?: RunAs): ChildProcess {
    const drop =
      as === undefined
        ? []
        : [
            'setpriv',
            `--reuid=${as.uid}`,
            `--regid=${as.gid}`,
            '--clear-groups',
            ...capabilityArgs(as.capabilities ?? []),
            '--',
          ]
    const child = spawn('ip', ['netns', 'exec', this.namespace, ...drop, file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...options,
    })
    this.#children.add(child)
    liveChildren.add(child)
    child.once('exit', () => {
      this.#children.delete(child)
      liveChildren.delete(child)
    })
    return child
  }

  /** Starts this Node (the project's Node 24) with `args` in the pod. */
  node(args: readonly string[], options: SpawnOptions = {}, as?: RunAs): ChildProcess {
    return this.spawn(process.execPath, args, options, as)
  }

  killAll(): void {
    for (const child of this.#children) child.kill('SIGKILL')
  }
}
