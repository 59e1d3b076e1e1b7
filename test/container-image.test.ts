// Scenario: the Dockerfile builds with podman on the stand-in base, stays small, and its ENTRYPOINT+CMD answer /healthz/ready as uid 1337.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const repo = join(import.meta.dirname, '..')
const isRoot = process.getuid?.() === 0
if (!isRoot)
  console.warn('container-image.test.ts skipped: podman builds and chroots as root only (CI runs as root)')

/** Issue 21's ceiling: the image at most 200 MiB uncompressed, as `podman image inspect` reports it. */
const issueCeilingBytes = 200 * 2 ** 20
/** Our own budget, well under the ceiling: the image measured 133.5 MB (bench/results/image-size-2026-12-07.md), plus room for a Node patch release. */
const sizeBudgetBytes = 140_000_000

/** What `podman image inspect` says about an image (the fields this test reads). */
interface ImageInspect {
  readonly Size: number
  readonly Healthcheck?: { readonly Test: readonly string[]; readonly Timeout: number }
  readonly Config: {
    readonly User: string
    readonly Env: readonly string[]
    readonly Entrypoint: readonly string[]
    readonly Cmd: readonly string[]
    readonly WorkingDir: string
    readonly ExposedPorts: Record<string, object>
  }
}

describe.skipIf(!isRoot)('the container image', () => {
  const tag = `localhost/outrigger-test:${process.pid}`
  let storage = ''
  let podmanGlobal: string[] = []
  let image: ImageInspect
  let rootfs = ''
  let buildSeconds = 0

  const podman = async (...args: string[]): Promise<string> =>
    (await run('podman', [...podmanGlobal, ...args], { maxBuffer: 16 << 20 })).stdout.trim()

  beforeAll(async () => {
    await run('bash', [join(repo, 'scripts', 'install-test-tools.sh')])
    // A storage of its own: parallel runs never share tags, and removing it removes everything the build made.
    storage = await mkdtemp('/var/tmp/outrigger-image-')
    podmanGlobal = [
      '--root',
      join(storage, 'root'),
      '--runroot',
      join(storage, 'run'),
      '--storage-driver',
      'overlay',
    ]
    const started = performance.now()
    await run('bash', [join(repo, 'scripts', 'image', 'build.sh'), tag, ...podmanGlobal], {
      maxBuffer: 64 << 20,
    })
    buildSeconds = (performance.now() - started) / 1000
    ;[image] = JSON.parse(await podman('image', 'inspect', tag)) as ImageInspect[]
    rootfs = await podman('image', 'mount', tag)
  }, 900_000)

  afterAll(async () => {
    if (storage === '') return
    // The storage is this run's alone: unmounting what lives in it and deleting it removes every image and
    // layer the build made (`podman rmi --all` does the same but takes a minute). The mounts go newest first:
    // the image's overlays, then containers/storage's bind of its overlay directory onto itself.
    await podman('image', 'unmount', '--all', '--force').catch(() => {})
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter((target) => target.startsWith(`${storage}/`))
    for (const target of mounts.reverse()) await run('umount', [target]).catch(() => {})
    await rm(storage, { recursive: true, force: true })
  }, 120_000)

  it('is small: one node, no npm, no devDependencies, no shell', () => {
    console.log(`container image: built in ${buildSeconds.toFixed(0)} s, ${(image.Size / 1e6).toFixed(1)} MB`)
    expect(image.Size).toBeLessThanOrEqual(issueCeilingBytes)
    expect(image.Size).toBeLessThan(sizeBudgetBytes)

    expect(filesNamed(rootfs, 'node')).toEqual(['/usr/local/bin/node'])
    expect(existsSync(join(rootfs, 'usr/local/lib/node_modules'))).toBe(false)
    expect(filesNamed(rootfs, 'npm')).toEqual([])
    expect(existsSync(join(rootfs, 'bin/sh'))).toBe(false)

    const installed = readdirSync(join(rootfs, 'opt/outrigger/node_modules'))
    expect(installed).toContain('undici')
    const devOnly = devOnlyPackages().filter((name) =>
      existsSync(join(rootfs, 'opt/outrigger/node_modules', name)),
    )
    expect(devOnly).toEqual([])
  })

  it("holds no ELF file built for another machine: node, its libraries and koffi's addon are this architecture's", () => {
    const machine = elfMachine(process.execPath)
    const elves = [...walk(rootfs, ['usr', 'opt'])].flatMap((path) => {
      const found = elfMachine(path)
      return found === null ? [] : [{ path: path.slice(rootfs.length), machine: found }]
    })
    expect(elves.map((elf) => elf.path)).toContain('/usr/local/bin/node')
    expect(elves.some((elf) => elf.path.endsWith('/koffi.node'))).toBe(true)
    expect(elves.filter((elf) => elf.machine !== machine)).toEqual([])
  })

  it('declares uid 1337, the sidecar ports and the health check on 15021', () => {
    expect(image.Config.User).toBe('1337:1337')
    expect(Object.keys(image.Config.ExposedPorts).sort()).toEqual(
      ['15001/tcp', '15006/tcp', '15021/tcp', '15053/udp', '15090/tcp'].sort(),
    )
    expect(image.Healthcheck?.Test[0]).toBe('CMD')
    expect(image.Healthcheck?.Test.join(' ')).toContain('http://127.0.0.1:15021/healthz/ready')
  })

  it('runs its ENTRYPOINT+CMD as uid 1337 until /healthz/ready answers 200, and exits 0 on SIGTERM', async () => {
    // A pod of its own: a network namespace with loopback up (so the default ports clash with nothing on
    // the host), /proc and /dev as a runtime gives them, in a mount namespace that vanishes with the process.
    const command = [...image.Config.Entrypoint, ...image.Config.Cmd]
    const sidecar = spawn(
      'unshare',
      [
        '--net',
        '--mount',
        '--',
        'sh',
        '-c',
        'ip link set lo up && mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec "$@"',
        rootfs,
        ...inImage(rootfs, image),
        ...command,
      ],
      { env: imageEnv(image), stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const output = collect(sidecar)
    const exited = exitOf(sidecar)
    try {
      const pid = sidecar.pid ?? 0
      const inPod = [`--net=/proc/${pid}/ns/net`, '--']
      // The image's own HEALTHCHECK, run in the pod as a runtime runs it, until it passes.
      const healthCheck = image.Healthcheck?.Test.slice(1) ?? []
      const deadline = Date.now() + 60_000
      for (;;) {
        if (sidecar.exitCode !== null) throw new Error(`the sidecar exited ${sidecar.exitCode}:\n${output()}`)
        const check = await run('nsenter', [...inPod, ...inImage(rootfs, image), ...healthCheck], {
          env: imageEnv(image),
          timeout: 10_000,
        }).then(
          () => true,
          () => false,
        )
        if (check) break
        if (Date.now() > deadline) throw new Error(`not ready within 60 s:\n${output()}`)
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      // And from outside the image: the status and the process's real uid.
      const probe = await run('nsenter', [
        ...inPod,
        process.execPath,
        '-e',
        "fetch('http://127.0.0.1:15021/healthz/ready').then((r) => console.log(r.status))",
      ])
      expect(probe.stdout.trim()).toBe('200')
      // uPlot's browser bundle, which the dashboard reads by path from node_modules (the pruning must keep it).
      const uplot = await run('nsenter', [
        ...inPod,
        process.execPath,
        '-e',
        "fetch('http://127.0.0.1:15000/dashboard/uplot.js').then(async (r) => console.log(r.status, (await r.text()).length))",
      ])
      const [uplotStatus, uplotLength] = uplot.stdout.trim().split(' ').map(Number)
      expect(uplotStatus).toBe(200)
      expect(uplotLength).toBeGreaterThan(10_000)
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('1337')

      sidecar.kill('SIGTERM')
      expect(await exited, output()).toBe(0)
    } finally {
      sidecar.kill('SIGKILL')
      await exited
    }
  }, 120_000)

  it('loads every production dependency, and koffi calls into the image’s libc (nothing pruned is needed)', async () => {
    // The proxy's default config loads most modules at start; this covers the ones only other modes import.
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>
    }
    const script = [
      'for (const name of JSON.parse(process.argv[1])) await import(name)',
      "const { default: koffi } = await import('koffi')",
      "console.log(koffi.load('libc.so.6').func('unsigned int getuid()')())",
    ].join('\n')
    const [unshare, ...enter] = inImage(rootfs, image)
    const { stdout } = await run(
      unshare,
      [...enter, 'node', '--input-type=module', '-e', script, JSON.stringify(Object.keys(pkg.dependencies))],
      { env: imageEnv(image) },
    )
    expect(stdout.trim()).toBe('1337')
  }, 60_000)

  it('runs `outrigger` from the PATH, through its `#!/usr/bin/env node` line', async () => {
    const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }
    const [unshare, ...enter] = inImage(rootfs, image)
    const { stdout } = await run(unshare, [...enter, 'outrigger', 'version'], { env: imageEnv(image) })
    expect(stdout.trim()).toContain(version)
  }, 60_000)

  it("carries the capture init container's tools: iptables-restore (nft) and ip rule/route", async () => {
    // Run as root in a network namespace of their own, as the init container runs in the pod's.
    const dir = await mkdtemp('/var/tmp/outrigger-image-rules-')
    try {
      await writeFile(join(dir, 'v4'), istioStyleRedirect('iptables'))
      await writeFile(join(dir, 'v6'), istioStyleRedirect('ip6tables'))
      const stdout = await inOwnNetns(
        rootfs,
        image,
        [
          'iptables-restore < "$1/v4"',
          'ip6tables-restore < "$1/v6"',
          'ip rule add fwmark 0x539 lookup 133',
          'ip route add local default dev lo table 133',
          'iptables-save -t nat',
          'ip6tables-save -t nat',
          'ip rule show',
          'ip route show table 133',
        ].map(inChroot),
        dir,
      )
      expect(stdout.match(/-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/g)).toHaveLength(2)
      expect(stdout.match(/-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN/g)).toHaveLength(2)
      expect(stdout).toMatch(/fwmark 0x539 lookup 133/)
      expect(stdout).toMatch(/local default dev lo/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it('runs the capture init container: `outrigger capture install` writes every rule kind it has, and `remove` undoes it', async () => {
    // TPROXY inbound, DNS, INVALID drops, excluded NICs and ports, IPv6 too: every iptables extension the
    // capture uses is loaded by iptables-restore and read back by iptables-save, from the image's own files.
    const flags = [
      '--mode TPROXY --inbound-ports "*" --exclude-inbound-ports 15020',
      '--outbound-ip-ranges "*" --exclude-outbound-ip-ranges 10.96.0.0/12 --outbound-ports 8080',
      '--exclude-outbound-ports 9090 --exclude-interfaces eth9 --redirect-dns --capture-all-dns',
      '--drop-invalid --enable-ipv6',
    ].join(' ')
    const stdout = await inOwnNetns(rootfs, image, [
      'ip link set lo up',
      inChroot(`outrigger capture install ${flags}`),
      'echo "=== installed"',
      ...['iptables-save', 'ip6tables-save', 'ip rule show', 'ip -6 rule show'].map(inChroot),
      inChroot('outrigger capture remove'),
      'echo "=== removed"',
      ...['iptables-save', 'ip6tables-save', 'ip rule show'].map(inChroot),
    ])
    const [, installed = '', removed = ''] = stdout.split(/^=== \w+$/m)
    // Each rule once per family (iptables and ip6tables), the excluded NIC in both mangle and nat.
    const expected: readonly [RegExp, number][] = [
      [/-j TPROXY --on-port 15006/g, 2],
      [/-j CONNMARK --save-mark/g, 2],
      [/-m connmark --mark 0x539 .*-j CONNMARK --restore-mark/g, 2],
      [/-j MARK --set-xmark 0x539/g, 2],
      [/-m conntrack --ctstate INVALID/g, 2],
      [/-m owner --gid-owner 1337 -j RETURN/g, 2],
      [/-m multiport ! --dports 53,15008/g, 2],
      [/-p udp -m udp --dport 53 -j CT --zone 2/g, 2],
      [/-p udp -m udp --dport 53 -j REDIRECT --to-ports 15053/g, 2],
      [/-j REDIRECT --to-ports 15001/g, 2],
      [/-i eth9 -m comment --comment outrigger-capture -j RETURN/g, 4],
      [/fwmark 0x539 lookup 133/g, 2],
    ]
    for (const [rule, count] of expected) expect(installed.match(rule), String(rule)).toHaveLength(count)
    expect(removed).not.toMatch(/ISTIO_|outrigger-capture|lookup 133/)
  }, 60_000)
})

/** The e_machine of an ELF file (x86-64 62, AArch64 183), or null for any other file. */
function elfMachine(path: string): number | null {
  const header = Buffer.alloc(20)
  const fd = openSync(path, 'r')
  try {
    if (readSync(fd, header, 0, 20, 0) < 20) return null
  } finally {
    closeSync(fd)
  }
  return header.readUInt32BE(0) === 0x7f454c46 ? header.readUInt16LE(18) : null
}

/** Every regular file under the image's top directories, as host paths. */
function* walk(rootfs: string, tops: readonly string[]): Generator<string> {
  const stack = tops.map((top) => join(rootfs, top))
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) stack.push(join(dir, entry.name))
      else if (entry.isFile()) yield join(dir, entry.name)
    }
  }
}

/** unshare's arguments that enter the image as the runtime would: its root, WORKDIR and USER. */
function inImage(rootfs: string, image: ImageInspect): string[] {
  const [uid, gid = uid] = image.Config.User.split(':')
  return [
    'unshare',
    `--root=${rootfs}`,
    `--wd=${image.Config.WorkingDir}`,
    `--setgid=${gid}`,
    `--setuid=${uid}`,
    '--',
  ]
}

/**
 * Runs the shell `steps` (joined by `&&`) as root in a network namespace of their own, with the image's ENV: in
 * them `$0` is the image's root and `$1`… are `args`. Resolves with their stdout.
 */
async function inOwnNetns(
  rootfs: string,
  image: ImageInspect,
  steps: readonly string[],
  ...args: string[]
): Promise<string> {
  const { stdout } = await run('unshare', ['--net', '--', 'sh', '-c', steps.join(' && '), rootfs, ...args], {
    env: imageEnv(image),
  })
  return stdout
}

/** A step of inOwnNetns run with the image as its root: `chroot "$0" <command>`. */
function inChroot(command: string): string {
  return `chroot "$0" ${command}`
}

/** The image's ENV, and nothing of the test's own environment. */
function imageEnv(image: ImageInspect): Record<string, string> {
  return Object.fromEntries(image.Config.Env.map((entry) => entry.split(/=(.*)/s, 2) as [string, string]))
}

/** Istio's outbound redirect (tools/istio-iptables): everything but the proxy's own uid goes to 15001. */
function istioStyleRedirect(table: 'iptables' | 'ip6tables'): string {
  return [
    `# ${table}`,
    '*nat',
    ':ISTIO_REDIRECT - [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
    '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
    '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
    'COMMIT',
    '',
  ].join('\n')
}

/** Regular files (not links) with this name anywhere under the image's /usr and /opt, as paths inside the image. */
function filesNamed(rootfs: string, name: string): string[] {
  const found: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name === name && entry.isFile() && statSync(path).size > 0)
        found.push(path.slice(rootfs.length))
    }
  }
  for (const top of ['usr', 'opt']) walk(join(rootfs, top))
  return found
}

/** The devDependencies that no production dependency needs (package-lock marks them `dev`). */
function devOnlyPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>
  }
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>
  }
  return Object.keys(pkg.devDependencies).filter(
    (name) => lock.packages[`node_modules/${name}`]?.dev === true,
  )
}

function collect(child: ChildProcess): () => string {
  let text = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  return () => text
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}
