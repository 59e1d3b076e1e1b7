// Transparent capture on the real kernel path: iptables REDIRECT to 15001/15006, the original destination, passthrough, blackhole, inbound mTLS and 127.0.0.6.

import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { installCapture, installCaptureOrFail } from './harness/capture-install.ts'
import * as istio from './harness/istio.ts'
import { filesTls, issueCertificate, outrigger } from './harness/mesh.ts'
import { NetnsLab, netnsSkipReason, type Pod, proxyUser } from './harness/netns.ts'
import { grpcCall, httpGet, podClient, startPodApp, tcpExchange, tlsExchange } from './harness/pod-app.ts'
import { openToAll, type PodProxy, startPodProxy } from './harness/pod-proxy.ts'
import { selfSignedCert } from './harness/tls-cert.ts'

const skip = netnsSkipReason()

/**
 * A pod's bootstrap. DNS auto allocation (ISTIO_META_DNS_AUTO_ALLOCATE) is off: a service with no written
 * `addresses` is then served by its port's 0.0.0.0 listener whatever address the app dials, which the SNI
 * and PASSTHROUGH cases rely on; with it on, as in Istio, that service's listener is its allocated VIP only.
 */
const node = (workload: string, serviceAccount: string): string => `node:
  workload: ${workload}
  namespace: default
  serviceAccount: ${serviceAccount}
  labels: {app: ${workload}}
capture: iptables
listeners:
  outbound: {port: 15001, address: '::'}
  inbound: {port: 15006, address: '::'}
  admin: {port: 15000, address: 127.0.0.1}
  health: {port: 15021, address: 127.0.0.1}
  dns: {autoAllocate: false}
`

/** The lines a child prints on stdout, each with the time it arrived. */
class PrintedLines {
  readonly #seen = new Map<string, number>()
  readonly #waiters = new Map<string, (at: number) => void>()
  #output = ''

  constructor(child: ChildProcess) {
    let partial = ''
    child.stdout?.on('data', (d: Buffer) => {
      this.#output += d.toString()
      partial += d.toString()
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        this.#seen.set(line, Date.now())
        this.#waiters.get(line)?.(Date.now())
      }
    })
  }

  /** When `line` was printed, if it was. */
  at(line: string): number | undefined {
    return this.#seen.get(line)
  }

  /** Resolves with the time `line` was printed (at once if it was), or rejects after `timeoutMs`. */
  waitFor(line: string, timeoutMs: number): Promise<number> {
    const seen = this.#seen.get(line)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${line}" within ${timeoutMs} ms: ${this.#output}`)),
        timeoutMs,
      )
      this.#waiters.set(line, (at) => {
        clearTimeout(timer)
        resolve(at)
      })
    })
  }
}

/** Resolves with `child`'s exit code, or rejects after `timeoutMs`. */
function exitWithin(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms`)), timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}

/** A client that makes one request on a keep-alive connection, says `idle`, and says `closed` when the server closes it. */
const keepAliveClient = (url: string): string =>
  `
import http from 'node:http'
const agent = new http.Agent({ keepAlive: true })
const req = http.get(${JSON.stringify('URL')}, { agent }, (res) => {
  res.resume()
  res.on('end', () => console.log('idle'))
})
req.on('socket', (socket) => socket.on('close', () => { console.log('closed'); process.exit(0) }))
// The agent unrefs an idle socket: this keeps the client alive until the server closes it.
setTimeout(() => process.exit(2), 60_000)
`.replace('"URL"', JSON.stringify(url))

describe.skipIf(skip !== undefined)(
  `capture: iptables${skip === undefined ? '' : ` (skipped: ${skip})`}`,
  () => {
    let lab: NetnsLab
    let client: Pod
    let server: Pod
    let external: Pod
    let certs: string
    const proxies: PodProxy[] = []
    let clientProxy: PodProxy

    const clientResources = (mode: 'ALLOW_ANY' | 'REGISTRY_ONLY'): Record<string, string> => ({
      'web.yaml': istio.serviceEntry({
        name: 'web',
        hosts: ['web.example'],
        ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: server.ipv4, serviceAccount: 'web' } as istio.WorkloadEndpoint],
        spec: { location: 'MESH_INTERNAL', addresses: ['240.0.0.10'] },
      }),
      'web-dr.yaml': istio.destinationRule({
        host: 'web.example',
        trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      }),
      'db.yaml': istio.serviceEntry({
        name: 'db',
        hosts: ['db.example'],
        ports: [{ number: 9000, name: 'tcp', protocol: 'TCP' }],
        endpoints: [{ address: external.ipv4 }],
        spec: { location: 'MESH_EXTERNAL', addresses: ['240.0.0.20'] },
      }),
      'grpc.yaml': istio.serviceEntry({
        name: 'echo',
        hosts: ['echo.example'],
        ports: [{ number: 50051, name: 'grpc', protocol: 'GRPC' }],
        endpoints: [{ address: external.ipv4 }],
        spec: { location: 'MESH_EXTERNAL', addresses: ['240.0.0.50'] },
      }),
      // Reached only through PASSTHROUGH: its one endpoint does not exist.
      'pt.yaml': istio.serviceEntry({
        name: 'pt',
        hosts: ['pt.example'],
        ports: [{ number: 9002, name: 'tcp', protocol: 'TCP' }],
        endpoints: [{ address: '10.44.0.250' }],
        spec: { location: 'MESH_EXTERNAL' },
      }),
      'pt-dr.yaml': istio.destinationRule({
        host: 'pt.example',
        trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' } },
      }),
      'secure.yaml': istio.serviceEntry({
        name: 'secure',
        hosts: ['secure.example'],
        ports: [{ number: 8443, name: 'tls', protocol: 'TLS' }],
        endpoints: [{ address: external.ipv4 }],
        spec: { location: 'MESH_EXTERNAL' },
      }),
      // An egress listener without a port (the catch-all): every service port of its hosts is captured.
      'sidecar.yaml': istio.yamlStream(
        `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{hosts: ["./*"]}]
  outboundTrafficPolicy: {mode: ${mode}}
`,
      ),
    })

    beforeAll(async () => {
      lab = new NetnsLab('capture')
      client = lab.addPod('client')
      server = lab.addPod('server')
      external = lab.addPod('ext')
      // A default route, so that the client can address service VIPs (240.0.0.0/8) that capture takes.
      client.exec('ip', ['route', 'add', 'default', 'dev', 'eth0'])
      client.exec('ip', ['-6', 'route', 'add', 'default', 'dev', 'eth0'])
      // Each pod's init container: the real `outrigger capture install` (the client's IPv6 rules too).
      installCaptureOrFail(client, ['--enable-ipv6'])
      installCaptureOrFail(server)
      certs = mkdtempSync(join(tmpdir(), 'outrigger-capture-'))
      outrigger('ca', 'init', '--out', join(certs, 'ca'))
      issueCertificate(
        join(certs, 'ca'),
        'spiffe://cluster.local/ns/default/sa/client',
        join(certs, 'client'),
      )
      issueCertificate(join(certs, 'ca'), 'spiffe://cluster.local/ns/default/sa/web', join(certs, 'web'))
      openToAll(certs)
      await startPodApp(server, 'web', ['http:8080'])
      await startPodApp(
        external,
        'ext',
        ['http:8080', 'http:8090', 'tcp:9000', 'tcp:9001', 'tcp:9002', 'tls:8443', 'grpc:50051'],
        selfSignedCert(['secure.example']),
      )
      // The server: STRICT mTLS for the whole workload, two workers, no Sidecar (every port is the inbound passthrough).
      proxies.push(
        await startPodProxy(server, `${node('web', 'web')}concurrency: 2\n${filesTls(join(certs, 'web'))}`, {
          'strict.yaml': `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
`,
        }),
      )
      clientProxy = await startPodProxy(
        client,
        `${node('client', 'client')}${filesTls(join(certs, 'client'))}`,
        clientResources('ALLOW_ANY'),
      )
      proxies.push(clientProxy)
    }, 90_000)

    afterAll(() => {
      for (const proxy of proxies) proxy.remove()
      lab?.remove()
      if (certs !== undefined) rmSync(certs, { recursive: true, force: true })
    })

    it('routes HTTP by Host to a ServiceEntry service addressed by its VIP, over mTLS to the server, whose inbound passthrough connects from 127.0.0.6', () => {
      const out = podClient(client, httpGet('http://240.0.0.10:8080/a', 'web.example:8080'))
      expect(out.slice(0, 4)).toBe('200 ')
      const body = JSON.parse(out.slice(4)) as { app: string; remote: string; local: number; url: string }
      expect(body).toMatchObject({ app: 'web', url: '/a', local: 8080 })
      expect(body.remote).toMatch(/^(::ffff:)?127\.0\.0\.6$/)
    })

    it('routes HTTP by Host when the app addresses an endpoint directly', () => {
      const out = podClient(client, httpGet(`http://${server.ipv4}:8080/b`, 'web.example'))
      expect(out).toMatch(/^200 /)
      expect(JSON.parse(out.slice(4))).toMatchObject({ app: 'web', url: '/b' })
    })

    it('refuses plain text to the STRICT server from outside the mesh, and closes a connection to its own 15006', () => {
      expect(podClient(external, httpGet(`http://${server.ipv4}:8080/`))).toMatch(/^error /)
      expect(podClient(external, tcpExchange(server.ipv4, 15006, 'loop'))).toBe('closed')
      // Inside the client pod, a connection straight to the capture port is not redirected: no loop either.
      expect(podClient(client, tcpExchange('127.0.0.1', 15001, 'loop'))).toBe('closed')
    })

    it('sends TCP to a service VIP to the service', () => {
      expect(podClient(client, tcpExchange('240.0.0.20', 9000, 'hello'))).toBe('ext:hello')
    })

    it('routes gRPC by its authority to the service', () => {
      // 240.0.0.50 exists nowhere: only routing by :authority reaches the service's endpoint.
      const out = podClient(client, grpcCall('240.0.0.50', 50051, 'echo.example:50051', 'ping'))
      expect(JSON.parse(out)).toEqual({ status: 200, grpcStatus: '0', app: 'ext', echoed: 'ping' })
    })

    it('routes TLS by SNI to the service, whatever address the client connected to', () => {
      // The server pod has nothing on 8443: only SNI routing reaches the external service.
      expect(podClient(client, tlsExchange(server.ipv4, 8443, 'secure.example', 'sni'))).toBe('ext:sni')
    })

    it('sends a DestinationRule PASSTHROUGH service to the original destination, not its endpoints', () => {
      expect(podClient(client, tcpExchange(external.ipv4, 9002, 'orig'))).toBe('ext:orig')
      expect(clientProxy.admin('/stats/prometheus')).toMatch(
        /istio_tcp_connections_opened_total\{[^}]*destination_service="pt.example"/,
      )
    })

    it('passes unknown destinations through under ALLOW_ANY: HTTP on a service port and on an unknown port, TCP, IPv6', () => {
      const known = podClient(client, httpGet(`http://${external.ipv4}:8080/c`, 'elsewhere.example'))
      expect(known).toMatch(/^200 /)
      expect(JSON.parse(known.slice(4))).toMatchObject({ app: 'ext', url: '/c', host: 'elsewhere.example' })
      // The app saw the client pod's own address: passthrough keeps the connection a plain one.
      expect(JSON.parse(known.slice(4)).remote).toMatch(new RegExp(`${client.ipv4.replaceAll('.', '\\.')}$`))
      const unknownPort = podClient(client, httpGet(`http://${external.ipv4}:8090/d`))
      expect(JSON.parse(unknownPort.slice(4))).toMatchObject({ app: 'ext', url: '/d' })
      expect(podClient(client, tcpExchange(external.ipv4, 9001, 'any'))).toBe('ext:any')
      expect(podClient(client, tcpExchange(external.ipv6, 9001, 'six'))).toBe('ext:six')
      const stats = clientProxy.admin('/stats/prometheus')
      expect(stats).toMatch(
        /istio_tcp_connections_opened_total\{[^}]*destination_service="PassthroughCluster"/,
      )
      expect(stats).toMatch(/istio_requests_total\{[^}]*destination_service="PassthroughCluster"/)
    })

    it('blocks unknown destinations under REGISTRY_ONLY: TCP closed (BlackHoleCluster), HTTP 502; services still work', async () => {
      clientProxy.writeResource('sidecar.yaml', clientResources('REGISTRY_ONLY')['sidecar.yaml'])
      const deadline = Date.now() + 10_000
      let tcp = ''
      while (Date.now() < deadline) {
        tcp = podClient(client, tcpExchange(external.ipv4, 9001, 'any'))
        if (tcp === 'closed') break
        await new Promise((r) => setTimeout(r, 200))
      }
      expect(tcp).toBe('closed')
      expect(podClient(client, httpGet(`http://${external.ipv4}:8080/`, 'elsewhere.example'))).toMatch(/^502/)
      expect(podClient(client, tcpExchange('240.0.0.20', 9000, 'still'))).toBe('ext:still')
      expect(podClient(client, httpGet('http://240.0.0.10:8080/e', 'web.example:8080'))).toMatch(/^200 /)
      expect(clientProxy.admin('/stats/prometheus')).toMatch(
        /istio_tcp_connections_opened_total\{[^}]*destination_service="BlackHoleCluster"/,
      )
      clientProxy.writeResource('sidecar.yaml', clientResources('ALLOW_ANY')['sidecar.yaml'])
    }, 30_000)

    it('captures inbound traffic with TPROXY: the 15006 listener is IP_TRANSPARENT and the app sees 127.0.0.6', async (ctx) => {
      const pod = lab.addPod('tproxy')
      const ran = installCapture(pod, ['--mode', 'tproxy'])
      // The command names the kernel module it lacks (xt_TPROXY, xt_socket…): skip with its words then.
      if (ran.code !== 0 && /kernel (needs|has no|may lack)/.test(ran.stderr))
        ctx.skip(`TPROXY capture is not available here: ${ran.stderr.split('\n')[0]}`)
      expect(ran.code, ran.stderr).toBe(0)
      await startPodApp(pod, 'tp', ['http:8080', 'http:8081'])
      const bootstrap = node('tp', 'tp').replace('capture: iptables', 'capture: tproxy')
      // 8081 has a Sidecar ingress listener and is also an outbound service port: both listeners are kept.
      const resources = {
        'sidecar.yaml': istio.sidecar({
          ingress: [{ port: 8081, protocol: 'HTTP', name: 'http', defaultEndpoint: '127.0.0.1:8081' }],
        }),
        'other.yaml': istio.serviceEntry({
          name: 'other',
          hosts: ['other.example'],
          ports: [{ number: 8081, name: 'http', protocol: 'HTTP' }],
          endpoints: [{ address: external.ipv4 }],
        }),
      }
      // IP_TRANSPARENT needs CAP_NET_ADMIN: the proxy user keeps it, as in Istio's tproxy mode.
      const proxy = await startPodProxy(pod, bootstrap, resources, {
        ...proxyUser(),
        capabilities: ['net_admin'],
      })
      proxies.push(proxy)
      const out = podClient(external, httpGet(`http://${pod.ipv4}:8080/t`))
      expect(out.slice(0, 4)).toBe('200 ')
      const body = JSON.parse(out.slice(4)) as { app: string; remote: string; url: string }
      expect(body).toMatchObject({ app: 'tp', url: '/t' })
      expect(body.remote).toMatch(/^(::ffff:)?127\.0\.0\.6$/)
      expect(podClient(external, tcpExchange(pod.ipv4, 15006, 'loop'))).toBe('closed')
      // The Sidecar ingress port goes to its defaultEndpoint (the proxy connects from loopback, not 127.0.0.6).
      const ingress = podClient(external, httpGet(`http://${pod.ipv4}:8081/i`))
      expect(ingress.slice(0, 4)).toBe('200 ')
      expect(JSON.parse(ingress.slice(4))).toMatchObject({ app: 'tp', url: '/i', remote: '::ffff:127.0.0.1' })
    }, 40_000)

    it('closes idle keep-alive connections captured through 15006 as the SIGTERM drain starts, so the drain ends on zero connections', async () => {
      const pod = lab.addPod('drain')
      installCaptureOrFail(pod)
      await startPodApp(pod, 'dr', ['http:8080', 'http:8081'])
      // Istio's EXIT_ON_ZERO_ACTIVE_CONNECTIONS: the drain ends at the first count of no connection, not at 30 s.
      const bootstrap = `${node('dr', 'dr')}terminationDrainDuration: 30s\nexitOnZeroActiveConnections: true\nminimumDrainDuration: 0s\n`
      // 8081 has its own inbound listener (bind_to_port false); 8080 is served by 15006's own passthrough chain.
      const sidecar = istio.sidecar({
        ingress: [{ port: 8081, protocol: 'HTTP', name: 'http', defaultEndpoint: '127.0.0.1:8081' }],
      })
      const proxy = await startPodProxy(pod, bootstrap, { 'sidecar.yaml': sidecar })
      proxies.push(proxy)
      const clients = [8080, 8081].map((port) => {
        const child = external.node([
          '--input-type=module',
          '-e',
          keepAliveClient(`http://${pod.ipv4}:${port}/k`),
        ])
        return new PrintedLines(child)
      })
      for (const printed of clients) await printed.waitFor('idle', 10_000)
      // Kept alive: the proxy does not close them by itself.
      await new Promise((r) => setTimeout(r, 500))
      for (const printed of clients) expect(printed.at('closed')).toBeUndefined()
      const sigterm = Date.now()
      proxy.child.kill('SIGTERM')
      // Closed at the drain's start (idle: no request to finish), well before the 30 s drain duration.
      for (const printed of clients)
        expect((await printed.waitFor('closed', 8_000)) - sigterm).toBeLessThan(3_000)
      expect(await exitWithin(proxy.child, 8_000)).toBe(0)
    }, 40_000)

    it('closes an idle captured keep-alive connection a quarter into a timed drain, as Envoy spreads its drain-close', async () => {
      const pod = lab.addPod('drain2')
      installCaptureOrFail(pod)
      await startPodApp(pod, 'dr2', ['http:8080'])
      const proxy = await startPodProxy(pod, `${node('dr2', 'dr2')}terminationDrainDuration: 4s\n`, {})
      proxies.push(proxy)
      const printed = new PrintedLines(
        external.node(['--input-type=module', '-e', keepAliveClient(`http://${pod.ipv4}:8080/k`)]),
      )
      await printed.waitFor('idle', 10_000)
      const sigterm = Date.now()
      proxy.child.kill('SIGTERM')
      // Not at once (a client whose endpoint removal is not loaded yet may still be sending), not at the end.
      const after = (await printed.waitFor('closed', 8_000)) - sigterm
      expect(after).toBeGreaterThanOrEqual(700)
      expect(after).toBeLessThan(2_500)
      expect(await exitWithin(proxy.child, 8_000)).toBe(0)
    }, 40_000)
  },
)
