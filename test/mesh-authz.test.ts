// Scenario: AuthorizationPolicy over real Istio mTLS: the peer's certificate (from `outrigger ca`) decides principals, namespaces and `when` source keys.

import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { createMeshCa, filesTls, type MeshCa, strictMtls } from './harness/mesh.ts'
import { type PortTable, startClientSidecar, startServerSidecar } from './harness/mesh-pair.ts'
import { eventually, mainScript, type ProxyProcess } from './harness/proxy-process.ts'
import { exchange, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** A: the caller the policies allow. C: another service account of the same CA, in another namespace. */
const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep'
const RATINGS = 'spiffe://cluster.local/ns/legacy/sa/ratings'
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews'

let ca: MeshCa
let httpApp: Upstream
let tcpApp: TcpServer
/** B: reviews, STRICT, with the policies. */
let reviews: ProxyProcess
let sleep: ProxyProcess
let ratings: ProxyProcess
const port: PortTable = {}

/**
 * B's policies (security/v1beta1/authorization.proto). The DENY rules name B's HTTP port: on a TCP port
 * pilot drops their HTTP-only `methods` and they would deny every connection (docs/security.md).
 */
const policies = (): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-allow, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]
    to: [{operation: {paths: ["/allowed*"]}}]
  - from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]
    to: [{operation: {ports: ["${port.inTcp}"]}}]
  - to: [{operation: {paths: [/by-when]}}]
    when: [{key: source.principal, values: [cluster.local/ns/legacy/sa/ratings]}]
  - from: [{source: {namespaces: [default]}}]
    to: [{operation: {paths: [/team]}}]
    when: [{key: "request.headers[x-team]", values: [blue]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-deny, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules:
  - from: [{source: {namespaces: [legacy]}}]
    to: [{operation: {methods: [POST], ports: ["${port.inHttp}"]}}]
  - to: [{operation: {methods: [DELETE], ports: ["${port.inHttp}"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-audit, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: AUDIT
  rules:
  - from: [{source: {principals: ["*"]}}]
    to: [{operation: {paths: [/allowed/audited, /other]}}]
`

/** Istio's ISTIO_MUTUAL SNI (BuildDNSSrvSubsetKey) for the cluster a client reaches reviews by on `servicePort`. */
const sniOf = (servicePort: number): string => `outbound_.${servicePort}_._.reviews.default.svc.cluster.local`

/** Allows /sni only on connections whose SNI is the one A's sidecar sends. */
const sniPolicy = (sni: string): string => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-sni, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - to: [{operation: {paths: [/sni]}}]
    when: [{key: connection.sni, values: ["${sni}"]}]
`

/** A client sidecar in `namespace` with the workload certificate `certs`, reaching B's HTTP and TCP ports. */
function startClient(name: string, namespace: string, certs: string): Promise<ProxyProcess> {
  return startClientSidecar({
    ports: port,
    namespace,
    labels: { app: name },
    serviceAccount: name,
    egressHosts: ['*/*'],
    routes: [
      { listen: `${name}Http`, name: 'http', host: 'reviews', protocol: 'HTTP', target: 'inHttp' },
      { listen: `${name}Tcp`, name: 'tcp', host: 'reviews-tcp', protocol: 'TCP', target: 'inTcp' },
    ],
    tls: filesTls(certs),
  })
}

beforeAll(async () => {
  ca = await createMeshCa('outrigger-mesh-authz-')
  const reviewsCerts = ca.issue(REVIEWS, 'reviews')
  const sleepCerts = ca.issue(SLEEP, 'sleep')
  const ratingsCerts = ca.issue(RATINGS, 'ratings')
  httpApp = await startUpstream('reviews')
  tcpApp = await startTcpServer('reviews-tcp')

  reviews = await startServerSidecar({
    ports: port,
    inbound: [
      { port: 'inHttp', appPort: httpApp.port, protocol: 'HTTP', name: 'http' },
      { port: 'inTcp', appPort: tcpApp.port, protocol: 'TCP', name: 'tcp' },
    ],
    policies: () => [strictMtls('reviews'), policies()],
    tls: filesTls(reviewsCerts),
  })
  // The debug request log names the policy behind each denial.
  await reviews.admin('/logging?level=debug', { method: 'POST' })
  sleep = await startClient('sleep', 'default', sleepCerts)
  ratings = await startClient('ratings', 'legacy', ratingsCerts)
  // connection.sni: only known once A's egress port is; B reloads its policies.
  await reviews.writeResource('sni.yaml', sniPolicy(sniOf(port.sleepHttp)))
  await eventually(async () => {
    const res = await reviews.admin(`/authz?path=/sni&port=${port.inHttp}&sni=${sniOf(port.sleepHttp)}`)
    return (await res.text()).startsWith('ALLOW by ns[default]-policy[reviews-sni]-rule[0]')
  })
}, 120_000)

afterAll(async () => {
  await ratings?.stop()
  await sleep?.stop()
  await reviews?.stop()
  await httpApp?.close()
  await tcpApp?.close()
  await ca?.remove()
})

interface Case {
  readonly from: 'sleep' | 'ratings'
  readonly method: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly status: 200 | 403
  /** The Envoy RBAC policy a denial names (`none`: no ALLOW rule matched). */
  readonly deniedBy?: string
}

/** The Host each client names reviews by: the short name works only inside its namespace (Istio's virtual host domains). */
const hostFrom = { sleep: 'reviews', ratings: 'reviews.default' } as const

const rule = (policy: string, n: number): string => `ns[default]-policy[${policy}]-rule[${n}]`

/** The matrix: who (the certificate's principal and namespace) × method × path × header × SNI. */
const matrix: readonly Case[] = [
  { from: 'sleep', method: 'GET', path: '/allowed', status: 200 },
  { from: 'sleep', method: 'GET', path: '/allowed/deeper?q=1', status: 200 },
  { from: 'sleep', method: 'POST', path: '/allowed', status: 200 },
  { from: 'sleep', method: 'GET', path: '/other', status: 403, deniedBy: 'none' },
  { from: 'sleep', method: 'DELETE', path: '/allowed', status: 403, deniedBy: rule('reviews-deny', 1) },
  { from: 'sleep', method: 'GET', path: '/by-when', status: 403, deniedBy: 'none' },
  { from: 'sleep', method: 'GET', path: '/team', headers: { 'x-team': 'blue' }, status: 200 },
  {
    from: 'sleep',
    method: 'GET',
    path: '/team',
    headers: { 'x-team': 'red' },
    status: 403,
    deniedBy: 'none',
  },
  { from: 'sleep', method: 'GET', path: '/allowed/audited', status: 200 },
  { from: 'sleep', method: 'GET', path: '/sni', status: 200 },
  { from: 'ratings', method: 'GET', path: '/allowed', status: 403, deniedBy: 'none' },
  { from: 'ratings', method: 'POST', path: '/allowed', status: 403, deniedBy: rule('reviews-deny', 0) },
  { from: 'ratings', method: 'GET', path: '/by-when', status: 200 },
  {
    from: 'ratings',
    method: 'GET',
    path: '/team',
    headers: { 'x-team': 'blue' },
    status: 403,
    deniedBy: 'none',
  },
  { from: 'ratings', method: 'GET', path: '/allowed/audited', status: 403, deniedBy: 'none' },
  { from: 'ratings', method: 'GET', path: '/sni', status: 403, deniedBy: 'none' },
]

describe('AuthorizationPolicy over Istio mTLS: the peer certificate is the source', () => {
  it.each(matrix)('$from $method $path $headers → $status $deniedBy', async (c) => {
    const seen = httpApp.seen.length
    const reply = await send(port[`${c.from}Http`], hostFrom[c.from], c.path, {
      method: c.method,
      headers: c.headers,
    })
    expect(reply.status).toBe(c.status)
    if (c.status === 200) {
      expect(JSON.parse(reply.body)).toMatchObject({ method: c.method, url: c.path })
      return
    }
    // Envoy's RBAC filter body, and the app never saw the request.
    expect(reply.body).toBe('RBAC: access denied')
    expect(httpApp.seen.length).toBe(seen)
    const line = `request ${c.method} ${hostFrom[c.from]}${c.path} 403 flags=- details=rbac_access_denied_matched_policy[${c.deniedBy}]`
    await eventually(async () => reviews.stderr().includes(line))
  })

  it("B's app sees A's identity in XFCC, so the 200s above went over mTLS", async () => {
    const reply = await send(port.sleepHttp, 'reviews', '/allowed/xfcc')
    expect(reply.status).toBe(200)
    const xfcc = (JSON.parse(reply.body) as { headers: Record<string, string> }).headers[
      'x-forwarded-client-cert'
    ]
    expect(xfcc).toContain(`URI=${SLEEP}`)
  })

  it('TCP (network RBAC): A, allowed by principal, gets through; C is closed before B dials its app', async () => {
    const allowed = await exchange(port.sleepTcp, 'tcp from sleep')
    expect(allowed.text).toBe('tcp from sleep')
    const accepted = tcpApp.accepted()
    const refused = await exchange(port.ratingsTcp, 'tcp from ratings')
    expect(refused.bytes).toBe(0)
    expect(tcpApp.accepted()).toBe(accepted)
    await eventually(async () => /tcp .*rbac_access_denied_matched_policy\[none\]/.test(reviews.stderr()))
  })
})

describe("outrigger authz check on B's files agrees with what the live proxy decided", () => {
  const check = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [
        mainScript,
        'authz',
        'check',
        '--config',
        join(reviews.dir, 'bootstrap.yaml'),
        '--port',
        String(port.inHttp),
        ...args,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    )

  it("with A's principal: /allowed allowed (and audited), /other allow-nothing, DELETE denied by the DENY rule", () => {
    const audited = check('--principal', SLEEP, '--path', '/allowed/audited')
    expect(audited.status).toBe(0)
    expect(audited.stdout.split('\n')[0]).toMatch(/^ALLOW by ns\[default\]-policy\[reviews-allow\]-rule\[0\]/)
    expect(audited.stdout).toContain(`audited by ${rule('reviews-audit', 0)}`)

    const other = check('--principal', SLEEP, '--path', '/other')
    expect(other.status).toBe(1)
    expect(other.stdout).toContain('details: rbac_access_denied_matched_policy[none]')
    expect(other.stdout).toContain(`audited by ${rule('reviews-audit', 0)}`)

    const removal = check('--principal', SLEEP, '--method', 'DELETE', '--path', '/allowed')
    expect(removal.status).toBe(1)
    expect(removal.stdout.split('\n')[0]).toMatch(/^DENY by ns\[default\]-policy\[reviews-deny\]-rule\[1\]/)
  })
})
