// End to end: a mesh of network-namespace pods, each an ordinary app beside Outrigger with capture installed, on the real kernel path.

import { type ChildProcess, spawnSync } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as istio from './harness/istio.ts'
import { issueCertificate, outrigger } from './harness/mesh.ts'
import { NetnsLab, netnsSkipReason, type Pod, proxyUser, type RunAs } from './harness/netns.ts'
import { sumOf } from './harness/prometheus-text.ts'
import { mainScript } from './harness/proxy-process.ts'
import { appPorts } from './mesh/app-contract.ts'
import type { GrpcTally, HttpTally, LoadTally, ResolveOutcome, TcpOutcome } from './mesh/client-app.ts'
import {
  ClientDriver,
  captureBootstrap,
  exitOf,
  installCapture,
  PodSidecar,
  runInPod,
  startApp,
  type Workload,
} from './mesh/mesh-lab.ts'

const HOST = 'reviews.default.svc.cluster.local'
/** The service's virtual address (ServiceEntry `addresses`), which no interface in any pod has. */
const VIP = '10.96.0.10'
const PRODUCTPAGE = 'spiffe://cluster.local/ns/default/sa/productpage'
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews'

/** Why the whole mesh cannot run here, or undefined: root and the tools, then the features of issue 18 it needs. */
function meshSkipReason(): string | undefined {
  const netns = netnsSkipReason()
  if (netns !== undefined) return netns
  const help = spawnSync(process.execPath, [mainScript, 'help'], { encoding: 'utf8' })
  if (!/outrigger capture/.test(`${help.stdout}${help.stderr}`))
    return '`outrigger capture install` is not built yet (issue 18, capture)'
  const check = spawnSync(
    process.execPath,
    [mainScript, 'validate', join(import.meta.dirname, 'mesh', 'capture-bootstrap.yaml')],
    {
      encoding: 'utf8',
    },
  )
  if (check.status !== 0)
    return `the bootstrap's capture: iptables is not built yet (issue 18, the capture listeners): ${check.stderr.trim()}`
  return undefined
}

const skipReason = meshSkipReason()

/**
 * Parts that run but fail on today's merge of issue 18's branches (see the h-mesh report): skipped with the
 * reason unless MESH_ALL=1, and to be switched on as the fixes land.
 */
const knownGaps: Record<string, string> = {}
const gap = (part: string): string | undefined =>
  process.env.MESH_ALL === undefined ? knownGaps[part] : undefined

/** Whether `outrigger validate` accepts the bootstrap `file` of test/mesh/ (the feature bringing its keys is built). */
function bootstrapAccepts(file: string): boolean {
  return (
    spawnSync(process.execPath, [mainScript, 'validate', join(import.meta.dirname, 'mesh', file)]).status ===
    0
  )
}

/** Issue 18's lifecycle: a SIGTERM drain in which outbound keeps serving the app (exitOnZeroActiveConnections comes with it). */
const drainKeepsOutbound = skipReason === undefined && bootstrapAccepts('lifecycle-bootstrap.yaml')

/** One reviews pod: its app, its sidecar, and the labels its endpoint carries. */
interface ReviewsPod {
  readonly pod: Pod
  readonly version: string
  app: ChildProcess
  sidecar: PodSidecar
}

let lab: NetnsLab | undefined
let dir: string | undefined
let as: RunAs
let client: Pod
let external: Pod
let clientSidecar: PodSidecar
let app: ClientDriver
let outsider: ClientDriver
const reviews: ReviewsPod[] = []

const reviewsWorkload = (version: string): Workload => ({
  workload: `reviews-${version}`,
  serviceAccount: 'reviews',
  labels: { app: 'reviews', version },
})
const productpage: Workload = {
  workload: 'productpage-v1',
  serviceAccount: 'productpage',
  labels: { app: 'productpage', version: 'v1' },
}

/** The reviews ServiceEntry as the registry has it: a VIP, three ports, and the pods that are endpoints now. */
function reviewsService(endpoints: readonly ReviewsPod[]): string {
  return istio.serviceEntry({
    name: 'reviews',
    hosts: [HOST],
    ports: [
      { number: appPorts.http, name: 'http', protocol: 'HTTP' },
      { number: appPorts.tcp, name: 'tcp', protocol: 'TCP' },
      { number: appPorts.grpc, name: 'grpc', protocol: 'GRPC' },
    ],
    endpoints: endpoints.map(
      (r) =>
        ({
          address: r.pod.ipv4,
          labels: { app: 'reviews', version: r.version },
          serviceAccount: 'reviews',
        }) as istio.WorkloadEndpoint,
    ),
    spec: { addresses: [VIP], location: 'MESH_INTERNAL' },
  })
}

/** The client's Sidecar: every service of its namespace, unknown destinations as `mode` says. */
const clientSidecarResource = (
  mode: 'ALLOW_ANY' | 'REGISTRY_ONLY',
): string => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./*"]
  outboundTrafficPolicy: {mode: ${mode}}
`

/** The client's routing: `end-user: jason` goes to v2, the rest is split 70/30 between v1 and v2. */
function clientRouting(): string {
  return istio.yamlStream(
    istio.destinationRule({
      host: HOST,
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      subsets: istio.versionSubsets('v1', 'v2'),
    }),
    istio.virtualService({
      hosts: [HOST],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: istio.routeTo(HOST, 'v2') },
        {
          route: [
            { destination: { host: HOST, subset: 'v1' }, weight: 70 },
            { destination: { host: HOST, subset: 'v2' }, weight: 30 },
          ],
        },
      ],
    }),
  )
}

/**
 * The server side's security: STRICT mTLS, only productpage's identity allowed, and /secret denied to all.
 * The DENY rule names the HTTP port: on a TCP port Istio drops a DENY rule's HTTP-only fields and keeps the
 * rest (pilot authz model.go checkError: "a wider deny"), so `paths` alone would deny every TCP connection.
 */
const reviewsSecurity = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-allow, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-deny-secret, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["${appPorts.http}"], paths: [/secret]}}]
`

function podDir(pod: Pod): string {
  if (dir === undefined) throw new Error('no lab directory')
  return join(dir, pod.name)
}

/**
 * A reviews pod's sidecar: the registry (for its inbound ports' protocols) and the security policies. Its drain is
 * Istio's default terminationDrainDuration, 5 s: the time a client's sidecar has to drop a terminating pod's endpoint
 * (bench/results/graceful-drain-mesh-restart-2026-12-07.md saw 2–7 s on a loaded machine).
 */
function startReviewsSidecar(r: { pod: Pod; version: string }): Promise<PodSidecar> {
  return PodSidecar.start(r.pod, podDir(r.pod), as, captureBootstrap(reviewsWorkload(r.version), '5s'), {
    'reviews.yaml': reviewsService(reviews),
    'security.yaml': reviewsSecurity,
  })
}

/** The pod's init container: capture rules in its namespace; fails the test with the command's stderr. */
function capture(pod: Pod): void {
  const ran = installCapture(pod)
  if (ran.code !== 0) throw new Error(`capture install in ${pod.name} exited ${ran.code}: ${ran.stderr}`)
}

/** Polls `check` until it passes (config reloads are asynchronous), failing after `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`condition not met within ${timeoutMs} ms`)
}

/**
 * N requests from the client app to `url`. An app that reaches the service through the DNS proxy sends its
 * name as Host; the connection still goes to the VIP, which capture takes by original destination.
 */
const http = (url: string, count: number, headers?: Record<string, string>): Promise<HttpTally> =>
  app.call<HttpTally>({ op: 'http', url, count, headers: { host: `${HOST}:${appPorts.http}`, ...headers } })

/** N requests with the URL's address as Host: a service's VIP (its virtual host has it) or an address outside the registry. */
const httpTo = (url: string, count: number): Promise<HttpTally> =>
  app.call<HttpTally>({ op: 'http', url, count })

describe.skipIf(skipReason !== undefined)(
  `the mesh in network namespaces${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'outrigger-mesh-ns-'))
      // mkdtemp makes it 0700; the proxies run as uid 1337 and read their pod's directory below it.
      await chmod(dir, 0o755)
      as = proxyUser()
      lab = new NetnsLab('mesh')
      client = lab.addPod('productpage')
      for (const [name, version] of [
        ['reviews-v1a', 'v1'],
        ['reviews-v1b', 'v1'],
        ['reviews-v2', 'v2'],
      ] as const) {
        reviews.push({ pod: lab.addPod(name), version } as ReviewsPod)
      }
      external = lab.addPod('external')
      // A pod's default route (the service VIP and unknown addresses must be routable for capture to see them).
      for (const pod of lab.pods) pod.exec('ip', ['route', 'add', 'default', 'dev', 'eth0'])

      const caDir = join(dir, 'ca')
      outrigger('ca', 'init', '--out', caDir)
      issueCertificate(caDir, PRODUCTPAGE, join(podDir(client), 'certs'))
      for (const r of reviews) issueCertificate(caDir, REVIEWS, join(podDir(r.pod), 'certs'))

      for (const pod of [client, ...reviews.map((r) => r.pod)]) capture(pod)
      await Promise.all([
        ...reviews.map(async (r) => {
          r.app = await startApp(r.pod, r.version)
          r.sidecar = await startReviewsSidecar(r)
        }),
        startApp(external, 'none'),
        (async () => {
          clientSidecar = await PodSidecar.start(
            client,
            podDir(client),
            as,
            captureBootstrap(productpage, '2s'),
            {
              'reviews.yaml': reviewsService(reviews),
              'routing.yaml': clientRouting(),
              'sidecar.yaml': clientSidecarResource('ALLOW_ANY'),
            },
          )
        })(),
      ])
      app = new ClientDriver(client)
      outsider = new ClientDriver(external)
    }, 150_000)

    afterAll(async () => {
      // A failure on the kernel path is read in the proxies' own logs: MESH_LOGS=1 prints them.
      if (process.env.MESH_LOGS !== undefined) {
        for (const sidecar of [clientSidecar, ...reviews.map((r) => r.sidecar)])
          process.stderr.write(`--- ${sidecar?.pod.name}\n${sidecar?.stderr().slice(-6_000)}\n`)
      }
      lab?.remove()
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    })

    it('intercepts both ways: the app calls the VIP, the server app is reached through its sidecar over mTLS', async () => {
      // The VIP is the Host too: the service's virtual host lists its addresses, as Istio's does.
      const tally = await httpTo(`http://${VIP}:${appPorts.http}/hello`, 10)
      expect(tally.errors).toEqual([])
      expect(tally.statuses).toEqual({ 200: 10 })
      // Istio's inbound passthrough connects to the app from 127.0.0.6, so the app never sees the caller's address.
      expect(tally.last?.remote).toBe('127.0.0.6')
      expect(tally.last?.path).toBe('/hello')
      // The server sidecar terminated Istio mTLS and names the caller's identity to the app.
      expect(tally.last?.xfcc).toContain(`URI=${PRODUCTPAGE}`)
    })

    it('routes by VirtualService: a header match, and a weighted split counted over 200 requests', async () => {
      const jason = await http(`http://${VIP}:${appPorts.http}/`, 20, { 'end-user': 'jason' })
      expect(jason.versions).toEqual({ v2: 20 })
      const split = await http(`http://${VIP}:${appPorts.http}/`, 200)
      expect(split.statuses).toEqual({ 200: 200 })
      // 70/30: v1 is binomial(200, 0.7), mean 140, σ ≈ 6.5; 110..170 is beyond 4.5σ either way.
      expect(split.versions.v1).toBeGreaterThanOrEqual(110)
      expect(split.versions.v1).toBeLessThanOrEqual(170)
      expect(split.versions.v1 + split.versions.v2).toBe(200)
      // Both v1 pods serve the v1 subset.
      expect(split.pods['reviews-v1a']).toBeGreaterThan(0)
      expect(split.pods['reviews-v1b']).toBeGreaterThan(0)
    })

    it('carries TCP through capture on both sides, over mTLS', async (ctx) => {
      const known = gap('tcp')
      if (known !== undefined) ctx.skip(known)
      const servedBy = new Set<string>()
      for (let i = 0; i < 6; i++) {
        const outcome = await app.call<TcpOutcome>({
          op: 'tcp',
          host: VIP,
          port: appPorts.tcp,
          text: `ping-${i}`,
        })
        expect(outcome.error).toBeUndefined()
        const match = /^(reviews-v\w+):ping-\d$/.exec(outcome.reply)
        expect(match, outcome.reply).not.toBeNull()
        servedBy.add(match?.[1] ?? '')
      }
      expect(servedBy.size).toBeGreaterThan(0)
    })

    it('carries gRPC through capture', async (ctx) => {
      const known = gap('grpc')
      if (known !== undefined) ctx.skip(known)
      const tally = await app.call<GrpcTally>({ op: 'grpc', target: `${VIP}:${appPorts.grpc}`, count: 20 })
      expect(tally.errors).toEqual([])
      const served = Object.values(tally.servers).reduce((a, b) => a + b, 0)
      expect(served).toBe(20)
      for (const server of Object.keys(tally.servers)) expect(server).toMatch(/^reviews-v/)
    })

    it('passes unknown destinations with ALLOW_ANY and blocks them with REGISTRY_ONLY', async () => {
      const unknownHttp = `http://${external.ipv4}:${appPorts.http}/outside`
      const allowed = await httpTo(unknownHttp, 3)
      expect(allowed.statuses).toEqual({ 200: 3 })
      expect(allowed.last?.pod).toBe('external')
      // PassthroughCluster: the external app sees the client pod's own address, not a proxy's loopback.
      expect(allowed.last?.remote).toBe(client.ipv4)
      const tcpAllowed = await app.call<TcpOutcome>({
        op: 'tcp',
        host: external.ipv4,
        port: appPorts.tcp,
        text: 'hi',
      })
      expect(tcpAllowed.reply).toBe('external:hi')

      await clientSidecar.writeResource('sidecar.yaml', clientSidecarResource('REGISTRY_ONLY'))
      try {
        // HTTP: Istio's block_all virtual host answers 502; TCP: the BlackHoleCluster closes the connection.
        await eventually(async () => (await httpTo(unknownHttp, 1)).statuses['502'] === 1)
        const tcpBlocked = await app.call<TcpOutcome>({
          op: 'tcp',
          host: external.ipv4,
          port: appPorts.tcp,
          text: 'hi',
        })
        expect(tcpBlocked.reply).toBe('')
        // Registered services still work.
        expect((await http(`http://${VIP}:${appPorts.http}/`, 3)).statuses).toEqual({ 200: 3 })
      } finally {
        await clientSidecar.writeResource('sidecar.yaml', clientSidecarResource('ALLOW_ANY'))
      }
      await eventually(async () => (await httpTo(unknownHttp, 1)).statuses['200'] === 1)
    })

    it('enforces STRICT mTLS on captured inbound traffic, and denies by AuthorizationPolicy', async () => {
      // A pod without a sidecar calls a reviews pod directly in plain text: STRICT refuses it.
      const plain = await outsider.call<HttpTally>({
        op: 'http',
        url: `http://${reviews[0].pod.ipv4}:${appPorts.http}/`,
        count: 1,
      })
      expect(plain.statuses['200']).toBeUndefined()
      expect(plain.errors.length + Object.keys(plain.statuses).length).toBe(1)
      // The client's mTLS identity is allowed, but /secret is denied to everyone.
      const denied = await http(`http://${VIP}:${appPorts.http}/secret`, 1)
      expect(denied.statuses).toEqual({ 403: 1 })
      expect(denied.bodies).toEqual(['RBAC: access denied'])
    })

    it('reports Istio metrics on both sides with peer labels', async () => {
      await http(`http://${VIP}:${appPorts.http}/`, 20)
      const source = await clientSidecar.scrape()
      const bySource = {
        reporter: 'source',
        source_workload: 'productpage-v1',
        source_principal: PRODUCTPAGE,
        destination_service: HOST,
        destination_principal: REVIEWS,
        response_code: '200',
      }
      expect(
        sumOf(source, 'istio_requests_total', { ...bySource, destination_workload: 'reviews-v1' }),
      ).toBeGreaterThan(0)
      expect(
        sumOf(source, 'istio_requests_total', { ...bySource, destination_workload: 'reviews-v2' }),
      ).toBeGreaterThan(0)
      // The TCP part's connections (when it runs).
      if (gap('tcp') === undefined)
        expect(
          sumOf(source, 'istio_tcp_connections_opened_total', {
            reporter: 'source',
            destination_service: HOST,
          }),
        ).toBeGreaterThan(0)

      let servedByReviews = 0
      for (const r of reviews) {
        const text = await r.sidecar.scrape()
        servedByReviews += sumOf(text, 'istio_requests_total', {
          reporter: 'destination',
          source_workload: 'productpage-v1',
          source_principal: PRODUCTPAGE,
          destination_workload: `reviews-${r.version}`,
          connection_security_policy: 'mutual_tls',
          response_code: '200',
        })
      }
      expect(servedByReviews).toBeGreaterThanOrEqual(20)
      const denied = await Promise.all(
        reviews.map(async (r) =>
          sumOf(await r.sidecar.scrape(), 'istio_requests_total', {
            reporter: 'destination',
            response_code: '403',
          }),
        ),
      )
      expect(denied.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    })

    it('resolves the service by name through the DNS proxy, then calls it', async (ctx) => {
      const rules = await runInPod(client, 'iptables-save', ['-t', 'nat'])
      const listening = await runInPod(client, 'ss', ['-Hlun', 'sport = :15053'])
      if (!rules.stdout.includes('15053') || listening.stdout.trim() === '')
        ctx.skip('the DNS proxy (15053) and its capture (--redirect-dns) are not built yet (issue 18, DNS)')
      const resolved = await app.call<ResolveOutcome>({ op: 'resolve', name: 'reviews' })
      expect(resolved).toEqual({ addresses: [VIP] })
      const tally = await app.call<HttpTally>({
        op: 'http',
        url: `http://reviews:${appPorts.http}/by-name`,
        count: 5,
        resolveWithDns: true,
      })
      expect(tally.errors).toEqual([])
      expect(tally.statuses).toEqual({ 200: 5 })
    })

    it('restarts one v1 pod under steady load in Kubernetes order with zero failed requests', async (ctx) => {
      const known = gap('restart')
      if (known !== undefined) ctx.skip(known)
      const restarting = reviews[0]
      const others = reviews.slice(1)
      // A second container of the terminating pod, whose calls out must keep working while its sidecar drains.
      const leaving = drainKeepsOutbound ? new ClientDriver(restarting.pod) : undefined
      await app.call({
        op: 'loadStart',
        url: `http://${VIP}:${appPorts.http}/load`,
        concurrency: 4,
        headers: { host: `${HOST}:${appPorts.http}` },
      })
      try {
        await new Promise((r) => setTimeout(r, 1_000))
        // The pod is deleted: its endpoint leaves the registry (EDS) while the kubelet sends SIGTERM to both containers.
        const removed = clientSidecar.writeResource('reviews.yaml', reviewsService(others))
        const sidecarExit = restarting.sidecar.terminate()
        restarting.app.kill('SIGTERM')
        await removed
        if (leaving !== undefined) {
          // Istio's drain: inbound stops, outbound serves the pod's own calls until the drain time ends.
          await new Promise((r) => setTimeout(r, 300))
          const url = `http://${external.ipv4}:${appPorts.http}/bye`
          const out = await leaving.call<HttpTally>({ op: 'http', url, count: 1 })
          expect(out.statuses).toEqual({ 200: 1 })
          await leaving.close()
        }
        expect(await exitOf(restarting.app)).toBe(0)
        expect(await sidecarExit).toBe(0)
        // The new pod: the init container installs capture again (idempotent), the sidecar starts, then the app.
        capture(restarting.pod)
        restarting.sidecar = await startReviewsSidecar(restarting)
        restarting.app = await startApp(restarting.pod, restarting.version)
        // Ready: the endpoint comes back to the registry.
        await clientSidecar.writeResource('reviews.yaml', reviewsService(reviews))
        await new Promise((r) => setTimeout(r, 2_000))
      } finally {
        const tally = await app.call<LoadTally>({ op: 'loadStop' })
        expect(tally.failures).toEqual([])
        expect(tally.total).toBeGreaterThan(100)
        expect(tally.ok).toBe(tally.total)
        expect(tally.pods['reviews-v1b']).toBeGreaterThan(0)
      }
      // Served again by the restarted pod.
      await eventually(
        async () => ((await http(`http://${VIP}:${appPorts.http}/`, 20)).pods[restarting.pod.name] ?? 0) > 0,
      )
    }, 60_000)
  },
)
