// Scenario: `outrigger capture install|remove` in a pod's network namespace, proved on the real kernel path.

import { type ChildProcess, spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NetnsLab, netnsSkipReason, type Pod, proxyUser, type RunAs } from './harness/netns.ts'
import { mainScript } from './harness/proxy-process.ts'

const skip = netnsSkipReason()
const INJECTED = [
  '--proxy-uid',
  '1337',
  '--proxy-gid',
  '1337',
  '--inbound-ports',
  '*',
  '--exclude-inbound-ports',
  '15090,15021,15020',
  '--outbound-ip-ranges',
  '*',
  '--exclude-outbound-ip-ranges',
  '',
  '--exclude-outbound-ports',
  '',
  '--mode',
  'redirect',
]

/** TCP servers answering their name, one per `name=port`, on every address (IPv4 and IPv6); UDP too with `udp:`. */
const SERVERS = `
const net = require('node:net'), dgram = require('node:dgram')
let pending = 0
for (const spec of process.argv.slice(1)) {
  const [name, port] = spec.split('=')
  pending++
  if (name.startsWith('udp:')) {
    for (const type of ['udp4', 'udp6']) {
      const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' })
      s.on('message', (m, r) => s.send(name.slice(4), r.port, r.address))
      if (type === 'udp4') s.bind(Number(port), '0.0.0.0', () => { if (--pending === 0) console.log('ready') })
      else s.bind(Number(port), '::')
    }
    continue
  }
  net.createServer((c) => c.end(name)).listen({ port: Number(port), host: '::' }, () => { if (--pending === 0) console.log('ready') })
}`

/** Connects (from `source` if given) and prints what the server said; `udp` sends a datagram instead. */
const PROBE = `
const [kind, host, port, source] = process.argv.slice(1)
const done = (s) => { process.stdout.write(s); process.exit(0) }
setTimeout(() => done('timeout'), 3000)
if (kind === 'udp') {
  const s = require('node:dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4')
  s.on('message', (m) => done(String(m)))
  s.send('q', Number(port), host)
} else {
  const c = require('node:net').connect({ host, port: Number(port), localAddress: source || undefined })
  let got = ''
  c.on('data', (d) => { got += d })
  c.on('end', () => done(got))
  c.on('error', (e) => done('error ' + e.code))
}`

/** A transparent listener (IP_TRANSPARENT, which Node cannot set) answering with the address it was reached at. */
const TRANSPARENT_LISTENER = `
import socket, sys, threading
port = int(sys.argv[1])
def serve(family, level, option, host):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(level, option, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    s.listen(16)
    return s
def loop(s):
    while True:
        c, _ = s.accept()
        local = c.getsockname()
        c.sendall(('tproxy %s:%d' % (local[0], local[1])).encode())
        c.close()
v4 = serve(socket.AF_INET, socket.SOL_IP, 19, '0.0.0.0')
v6 = serve(socket.AF_INET6, socket.IPPROTO_IPV6, 75, '::')
threading.Thread(target=loop, args=(v6,), daemon=True).start()
print('ready', flush=True)
loop(v4)
`

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function collect(child: ChildProcess): Promise<Run> {
  return new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d
    })
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d
    })
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

function outrigger(pod: Pod, args: readonly string[], as?: RunAs): Promise<Run> {
  return collect(pod.node([mainScript, ...args], {}, as))
}

async function captureInstall(pod: Pod, args: readonly string[]): Promise<string> {
  const r = await outrigger(pod, ['capture', 'install', ...args])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return r.stdout
}

async function captureRemove(pod: Pod): Promise<void> {
  const r = await outrigger(pod, ['capture', 'remove'])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
}

function probe(
  pod: Pod,
  kind: 'tcp' | 'udp',
  host: string,
  port: number,
  as?: RunAs,
  source = '',
): Promise<string> {
  return collect(pod.node(['-e', PROBE, kind, host, String(port), source], {}, as)).then((r) => r.stdout)
}

async function startServers(pod: Pod, specs: readonly string[]): Promise<void> {
  const child = pod.node(['-e', SERVERS, ...specs])
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (String(d).includes('ready')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`servers exited ${code}`)))
  })
}

/** iptables-save without counters, comments and empty built-in tables: what a rule comparison should see. */
function rulesOf(pod: Pod, save: 'iptables-save' | 'ip6tables-save'): string[] {
  const out: string[] = []
  let table = ''
  for (const line of pod.exec(save, []).split('\n')) {
    if (line.startsWith('*')) table = line
    else if (line.startsWith('-A') || /^:(?!(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) )/.test(line)) {
      out.push(`${table} ${line.replace(/ \[\d+:\d+\]$/, '')}`)
    }
  }
  return out.sort()
}

function routingOf(pod: Pod): string {
  return ['-4', '-6']
    .map(
      (v) => `${pod.exec('ip', [v, 'rule', 'show'])}${pod.exec('ip', [v, 'route', 'show', 'table', 'all'])}`,
    )
    .join('')
}

describe.skipIf(skip !== undefined)(
  `capture in a pod namespace${skip === undefined ? '' : ` (skipped: ${skip})`}`,
  () => {
    let lab: NetnsLab
    let app: Pod
    let peer: Pod
    let other: Pod
    let resolvDir: string
    const proxy = proxyUser()

    beforeAll(async () => {
      lab = new NetnsLab('capture')
      app = lab.addPod('app')
      peer = lab.addPod('peer')
      other = lab.addPod('other')
      // The pod's resolv.conf, as `ip netns exec` mounts it: the nameserver is the peer pod.
      resolvDir = `/etc/netns/${app.namespace}`
      mkdirSync(resolvDir, { recursive: true })
      writeFileSync(`${resolvDir}/resolv.conf`, `nameserver ${peer.ipv4}\n`)
      await startServers(app, [
        'outbound=15001',
        'inbound=15006',
        'app=9080',
        'app-15021=15021',
        'udp:dns-proxy=15053',
      ])
      await startServers(peer, ['peer=8080', 'peer-5432=5432', 'udp:real-dns=53'])
      await startServers(other, ['other=8080'])
    }, 30_000)

    afterAll(() => {
      lab?.remove()
      if (resolvDir !== undefined) rmSync(resolvDir, { recursive: true, force: true })
    })

    it('REDIRECT: outbound to 15001 and inbound to 15006, the proxy and the excluded never captured (IPv4 and IPv6)', async () => {
      // Nothing captured before install.
      expect(await probe(app, 'tcp', peer.ipv4, 8080)).toBe('peer')
      await captureInstall(app, [
        ...INJECTED,
        '--exclude-outbound-ip-ranges',
        `${other.ipv4}/32,${other.ipv6}/128`,
        '--exclude-outbound-ports',
        '5432',
        '--dual-stack',
      ])
      try {
        for (const [peerIp, otherIp, passthrough] of [
          [peer.ipv4, other.ipv4, '127.0.0.6'],
          [peer.ipv6, other.ipv6, '::6'],
        ] as const) {
          // The app's outbound lands on 15001; the proxy's own goes out as it is.
          expect(await probe(app, 'tcp', peerIp, 8080)).toBe('outbound')
          expect(await probe(app, 'tcp', peerIp, 8080, proxy)).toBe('peer')
          // Excluded CIDR and excluded port are not captured.
          expect(await probe(app, 'tcp', otherIp, 8080)).toBe('other')
          expect(await probe(app, 'tcp', peerIp, 5432)).toBe('peer-5432')
          // Inbound from another pod lands on 15006; an excluded inbound port reaches the app itself.
          const appIp = passthrough === '::6' ? app.ipv6 : app.ipv4
          expect(await probe(peer, 'tcp', appIp, 9080)).toBe('inbound')
          expect(await probe(peer, 'tcp', appIp, 15021)).toBe('app-15021')
          // Loopback: the proxy calling its own pod's address goes inbound; from 127.0.0.6 / ::6 (the inbound
          // passthrough) it reaches the app; the app calling its own address is not captured.
          expect(await probe(app, 'tcp', appIp, 9080, proxy)).toBe('inbound')
          expect(await probe(app, 'tcp', appIp, 9080, proxy, passthrough)).toBe('app')
          expect(await probe(app, 'tcp', appIp, 9080)).toBe('app')
        }
      } finally {
        await captureRemove(app)
      }
      expect(await probe(app, 'tcp', peer.ipv4, 8080)).toBe('peer')
      expect(await probe(peer, 'tcp', app.ipv4, 9080)).toBe('app')
    }, 60_000)

    it('without --dual-stack a dual-stack pod gets IPv4 rules only, as istio-iptables (its first address is IPv4)', async () => {
      const before = rulesOf(app, 'ip6tables-save')
      await captureInstall(app, INJECTED)
      try {
        expect(rulesOf(app, 'ip6tables-save')).toEqual(before)
        expect(await probe(app, 'tcp', peer.ipv6, 8080)).toBe('peer')
        expect(await probe(app, 'tcp', peer.ipv4, 8080)).toBe('outbound')
      } finally {
        await captureRemove(app)
      }
    }, 30_000)

    it('DNS: the app’s queries to resolv.conf’s nameserver go to 15053; the proxy’s own reach the server', async () => {
      expect(await probe(app, 'udp', peer.ipv4, 53)).toBe('real-dns')
      await captureInstall(app, [...INJECTED, '--redirect-dns'])
      try {
        expect(await probe(app, 'udp', peer.ipv4, 53)).toBe('dns-proxy')
        expect(await probe(app, 'udp', peer.ipv4, 53, proxy)).toBe('real-dns')
        // Another server is not in resolv.conf: left alone unless --capture-all-dns.
        expect(await probe(app, 'udp', other.ipv4, 53)).toBe('timeout')
      } finally {
        await captureRemove(app)
      }
      await captureInstall(app, [...INJECTED, '--redirect-dns', '--capture-all-dns'])
      try {
        expect(await probe(app, 'udp', other.ipv4, 53)).toBe('dns-proxy')
        expect(await probe(app, 'udp', peer.ipv4, 53, proxy)).toBe('real-dns')
      } finally {
        await captureRemove(app)
      }
    }, 60_000)

    it('install is idempotent, another install replaces it, and remove restores iptables-save exactly', async () => {
      // Rules of someone else's, present the whole time.
      app.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-d', '192.0.2.1/32', '-j', 'RETURN'])
      app.exec('iptables', ['-t', 'nat', '-N', 'MY_CHAIN'])
      app.exec('iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '-j', 'MY_CHAIN'])
      app.exec('iptables', ['-t', 'mangle', '-A', 'OUTPUT', '-o', 'lo', '-j', 'RETURN'])
      app.exec('ip6tables', ['-t', 'nat', '-A', 'OUTPUT', '-d', '2001:db8::1/128', '-j', 'RETURN'])
      try {
        const v4 = rulesOf(app, 'iptables-save')
        const v6 = rulesOf(app, 'ip6tables-save')
        const routing = routingOf(app)
        const flags = [...INJECTED, '--dual-stack', '--redirect-dns']
        await captureInstall(app, flags)
        const once = rulesOf(app, 'iptables-save')
        const once6 = rulesOf(app, 'ip6tables-save')
        await captureInstall(app, flags)
        expect(rulesOf(app, 'iptables-save')).toEqual(once)
        expect(rulesOf(app, 'ip6tables-save')).toEqual(once6)
        expect(once.filter((l) => /^\*nat -A OUTPUT .*-j ISTIO_OUTPUT$/.test(l))).toHaveLength(1)
        expect(once).toEqual(expect.arrayContaining(v4))

        // Other flags replace ours: the excluded inbound ports and DNS capture are gone, TPROXY's chains are in.
        await captureInstall(app, [
          '-u',
          '1337',
          '-m',
          'TPROXY',
          '-b',
          '9080',
          '-i',
          '10.0.0.0/8',
          '--dual-stack',
        ])
        const replaced = rulesOf(app, 'iptables-save')
        expect(replaced.some((l) => l.includes('--dport 15090'))).toBe(false)
        expect(replaced.some((l) => l.includes('ISTIO_OUTPUT_DNS'))).toBe(false)
        expect(replaced).toContain('*mangle :ISTIO_TPROXY -')
        expect(replaced).toEqual(expect.arrayContaining(v4))

        await captureRemove(app)
        expect(rulesOf(app, 'iptables-save')).toEqual(v4)
        expect(rulesOf(app, 'ip6tables-save')).toEqual(v6)
        expect(routingOf(app)).toEqual(routing)
        // Removing again finds nothing and changes nothing.
        const again = await outrigger(app, ['capture', 'remove'])
        expect(again.stdout).toBe('outrigger capture: nothing to remove\n')
        expect(rulesOf(app, 'iptables-save')).toEqual(v4)
      } finally {
        spawnSync('ip', [
          'netns',
          'exec',
          app.namespace,
          'iptables',
          '-t',
          'nat',
          '-D',
          'OUTPUT',
          '-d',
          '192.0.2.1/32',
          '-j',
          'RETURN',
        ])
        spawnSync('ip', [
          'netns',
          'exec',
          app.namespace,
          'iptables',
          '-t',
          'nat',
          '-D',
          'PREROUTING',
          '-p',
          'tcp',
          '-j',
          'MY_CHAIN',
        ])
        spawnSync('ip', ['netns', 'exec', app.namespace, 'iptables', '-t', 'nat', '-X', 'MY_CHAIN'])
        spawnSync('ip', [
          'netns',
          'exec',
          app.namespace,
          'iptables',
          '-t',
          'mangle',
          '-D',
          'OUTPUT',
          '-o',
          'lo',
          '-j',
          'RETURN',
        ])
        spawnSync('ip', [
          'netns',
          'exec',
          app.namespace,
          'ip6tables',
          '-t',
          'nat',
          '-D',
          'OUTPUT',
          '-d',
          '2001:db8::1/128',
          '-j',
          'RETURN',
        ])
      }
    }, 60_000)

    it('TPROXY: mangle rules, policy routing, and inbound reaching a transparent listener with its original address', async (ctx) => {
      const flags = [
        '-u',
        '1337',
        '-g',
        '1337',
        '-m',
        'TPROXY',
        '-z',
        '16006',
        '-b',
        '*',
        '-d',
        '15021',
        '-i',
        '*',
        '--dual-stack',
      ]
      const installed = await outrigger(app, ['capture', 'install', ...flags])
      if (installed.code !== 0 && /TPROXY/.test(installed.stderr)) {
        ctx.skip(`the kernel has no TPROXY support: ${installed.stderr.trim()}`)
      }
      expect(installed.stderr).toBe('')
      try {
        const mangle = app.exec('iptables-save', ['-t', 'mangle'])
        expect(mangle).toMatch(
          /-A ISTIO_TPROXY ! -d 127\.0\.0\.1\/32 -p tcp -j TPROXY --on-port 16006 .*--tproxy-mark 0x539\/0xffffffff/,
        )
        expect(mangle).toContain('-A ISTIO_INBOUND -s 127.0.0.6/32 -i lo -p tcp -j RETURN')
        expect(app.exec('ip6tables-save', ['-t', 'mangle'])).toContain(
          '-A ISTIO_INBOUND -s ::6/128 -i lo -p tcp -j RETURN',
        )
        for (const v of ['-4', '-6']) {
          expect(app.exec('ip', [v, 'rule', 'show'])).toMatch(/from all fwmark 0x539 lookup 133/)
          expect(app.exec('ip', [v, 'route', 'show', 'table', '133'])).toMatch(/^local default dev lo/m)
        }
        const python = spawnSync('python3', ['--version'])
        if (python.status !== 0) {
          ctx.skip(
            'python3 is not installed (scripts/install-test-tools.sh installs it): Node cannot set IP_TRANSPARENT',
          )
        }
        const listener = app.spawn('python3', ['-u', '-c', TRANSPARENT_LISTENER, '16006'])
        await new Promise<void>((resolve, reject) => {
          listener.stdout?.on('data', (d: Buffer) => {
            if (String(d).includes('ready')) resolve()
          })
          listener.once('exit', (code) => reject(new Error(`transparent listener exited ${code}`)))
        })
        expect(await probe(peer, 'tcp', app.ipv4, 9080)).toBe(`tproxy ${app.ipv4}:9080`)
        expect(await probe(peer, 'tcp', app.ipv6, 9080)).toBe(`tproxy ${app.ipv6}:9080`)
        expect(await probe(peer, 'tcp', app.ipv4, 15021)).toBe('app-15021')
        // Outbound stays REDIRECT.
        expect(await probe(app, 'tcp', peer.ipv4, 8080)).toBe('outbound')
        listener.kill('SIGKILL')
      } finally {
        await captureRemove(app)
      }
      expect(app.exec('ip', ['-4', 'rule', 'show'])).not.toContain('fwmark')
      expect(app.exec('ip', ['-6', 'rule', 'show'])).not.toContain('fwmark')
    }, 60_000)

    it('--dry-run prints the rules and changes nothing', async () => {
      const before = rulesOf(app, 'iptables-save')
      const out = await captureInstall(app, [...INJECTED, '--dry-run'])
      expect(out).toContain('# iptables-restore --noflush (IPv4)')
      expect(out).toContain('-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN')
      expect(out).toContain('-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN')
      expect(rulesOf(app, 'iptables-save')).toEqual(before)
    })

    it.skipIf(proxy.uid === 0)('without root or CAP_NET_ADMIN it says so and changes nothing', async () => {
      const before = rulesOf(app, 'iptables-save')
      const r = await outrigger(app, ['capture', 'install', ...INJECTED], { uid: 1337, gid: 1337 })
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/needs root or CAP_NET_ADMIN .*running as uid 1337/)
      const removal = await outrigger(app, ['capture', 'remove'], { uid: 1337, gid: 1337 })
      expect(removal.code).toBe(1)
      expect(rulesOf(app, 'iptables-save')).toEqual(before)
    })

    it('bad flags exit 2 with the usage', async () => {
      const r = await outrigger(app, ['capture', 'install', '--mode', 'nat'])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('--mode nat: expected redirect or tproxy')
      expect(r.stderr).toContain('usage:')
    })
  },
)
