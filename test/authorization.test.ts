// Scenario: AuthorizationPolicy on a real proxy's inbound listeners (Envoy's RBAC filters as Istio builds them), the CLI check and admin /authz.

import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { closeSession, h2Request, h2Session } from './harness/h2.ts'
import { loopbackIngress, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, mainScript, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { exchange, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let app: Upstream
let tcpApp: TcpServer
/** HTTP ingress ports A and B; TCP ingress ports: allowed, not allowed (allow-nothing), denied by a DENY rule. */
let portA: number
let portB: number
let tcpAllowed: number
let tcpNotAllowed: number
let tcpDenied: number
let jwtKey: Awaited<ReturnType<typeof generateKeyPair>>
let jwks: string
const ISSUER = 'https://issuer.test'

const token = (claims: JWTPayload): Promise<string> =>
  new SignJWT({ iss: ISSUER, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setExpirationTime('5m')
    .sign(jwtKey.privateKey)

const policies = (): string => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-api, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - to: [{operation: {paths: ["/api/*", /public]}}]
  - when: [{key: "request.headers[x-token]", values: [letmein]}]
  - from: [{source: {ipBlocks: [127.0.0.1]}}]
    to: [{operation: {paths: [/local]}}]
  - from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]
    to: [{operation: {paths: [/sleep-only]}}]
  - to: [{operation: {ports: ["${tcpAllowed}"]}}]
  - from: [{source: {requestPrincipals: ["${ISSUER}/alice"]}}]
    to: [{operation: {paths: [/jwt-only]}}]
  - to: [{operation: {paths: [/team]}}]
    when: [{key: "request.auth.claims[groups]", values: [admins]}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  jwtRules:
  - issuer: ${ISSUER}
    jwks: '${jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  # Ports keep it off the TCP ports: there a DENY ignores paths (HTTP only) and would deny every connection.
  rules: [{to: [{operation: {paths: ["/admin*"], ports: ["${portA}", "${portB}"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete-b, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE], ports: ["${portB}"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-get-tcp, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: [GET], ports: ["${tcpDenied}"]}}]}]
`

beforeAll(async () => {
  app = await startUpstream('app')
  jwtKey = await generateKeyPair('ES256')
  jwks = JSON.stringify({
    keys: [{ ...(await exportJWK(jwtKey.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }],
  })
  tcpApp = await startTcpServer('tcp-app')
  ;[portA, portB, tcpAllowed, tcpNotAllowed, tcpDenied] = await freePorts(5)
  const ingress = (port: number, protocol: string, appPort: number) =>
    loopbackIngress(port, appPort, protocol, `p${port}`)
  proxy = await startProxy({
    labels: { app: 'reviews' },
    resources: {
      'sidecar.yaml': sidecar({
        name: 'reviews',
        ingress: [
          ingress(portA, 'HTTP', app.port),
          ingress(portB, 'HTTP', app.port),
          ingress(tcpAllowed, 'TCP', tcpApp.port),
          ingress(tcpNotAllowed, 'TCP', tcpApp.port),
          ingress(tcpDenied, 'TCP', tcpApp.port),
        ],
      }),
      'authz.yaml': policies(),
    },
  })
  // The debug request log names the deciding policy.
  await proxy.admin('/logging?level=debug', { method: 'POST' })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([app?.close(), tcpApp?.close()])
})

const host = 'reviews.default.svc.cluster.local'

describe('HTTP: Envoy RBAC filter (403 RBAC: access denied)', () => {
  it('passes a request an ALLOW rule matches, by path', async () => {
    const reply = await send(portA, host, '/api/items?x=1')
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body)).toMatchObject({ url: '/api/items?x=1' })
  })

  it('denies a request no ALLOW rule matches (allow-nothing), naming no policy', async () => {
    const before = app.seen.length
    const reply = await send(portA, host, '/other')
    expect(reply.status).toBe(403)
    expect(reply.body).toBe('RBAC: access denied')
    expect(app.seen.length).toBe(before)
    await eventually(async () =>
      proxy
        .stderr()
        .includes(
          'request GET reviews.default.svc.cluster.local/other 403 flags=- details=rbac_access_denied_matched_policy[none]',
        ),
    )
  })

  it('DENY wins over ALLOW, and the log names the DENY policy and rule', async () => {
    const reply = await send(portA, host, '/admin/users', { headers: { 'x-token': 'letmein' } })
    expect(reply.status).toBe(403)
    expect(reply.body).toBe('RBAC: access denied')
    await eventually(async () =>
      proxy
        .stderr()
        .includes('details=rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]'),
    )
  })

  it('allows by header (when request.headers), and by source.ip', async () => {
    expect((await send(portA, host, '/other', { headers: { 'x-token': 'letmein' } })).status).toBe(200)
    expect((await send(portA, host, '/other', { headers: { 'x-token': 'wrong' } })).status).toBe(403)
    expect((await send(portA, host, '/local')).status).toBe(200)
  })

  it('matches methods and destination ports: DELETE denied on port B only', async () => {
    expect((await send(portB, host, '/api/x', { method: 'DELETE' })).status).toBe(403)
    expect((await send(portA, host, '/api/x', { method: 'DELETE' })).status).toBe(200)
    expect((await send(portB, host, '/api/x', { method: 'GET' })).status).toBe(200)
  })

  it('matches the normalized path: /api/../admin is /admin', async () => {
    expect((await send(portA, host, '/api/../admin')).status).toBe(403)
    expect((await send(portA, host, '/public/../api/ok')).status).toBe(200)
  })

  it('denies HTTP/2 the same way, and a gRPC call with PERMISSION_DENIED as Envoy maps 403', async () => {
    const session = await h2Session(portA)
    try {
      const plain = await h2Request(session, { ':path': '/other', ':authority': host })
      expect(plain.status).toBe(403)
      expect(plain.body.toString()).toBe('RBAC: access denied')
      const grpc = await h2Request(session, {
        ':method': 'POST',
        ':path': '/pkg.Svc/Call',
        ':authority': host,
        'content-type': 'application/grpc',
        te: 'trailers',
      })
      expect(grpc.status).toBe(200)
      expect(grpc.headers['grpc-status']).toBe('7')
      expect(grpc.headers['grpc-message']).toBe('RBAC: access denied')
    } finally {
      await closeSession(session)
    }
  })

  it("reads the JWT filter's request principal and claims (requestPrincipals, request.auth.claims)", async () => {
    const bearer = async (claims: JWTPayload) => ({ authorization: `Bearer ${await token(claims)}` })
    expect((await send(portA, host, '/jwt-only')).status).toBe(403)
    expect((await send(portA, host, '/jwt-only', { headers: await bearer({ sub: 'alice' }) })).status).toBe(
      200,
    )
    expect((await send(portA, host, '/jwt-only', { headers: await bearer({ sub: 'bob' }) })).status).toBe(403)
    const admins = await bearer({ sub: 'carol', groups: ['users', 'admins'] })
    expect((await send(portA, host, '/team', { headers: admins })).status).toBe(200)
    expect(
      (await send(portA, host, '/team', { headers: await bearer({ sub: 'carol', groups: ['users'] }) }))
        .status,
    ).toBe(403)
  })

  it('without an mTLS peer a principals rule never matches', async () => {
    expect((await send(portA, host, '/sleep-only')).status).toBe(403)
  })
})

describe('TCP: Envoy network RBAC filter (connection closed)', () => {
  it('proxies a connection an ALLOW rule matches by port', async () => {
    const out = await exchange(tcpAllowed, 'hello')
    expect(out.text).toBe('hello')
  })

  it('closes a connection no ALLOW rule matches, and one a DENY rule matches once its HTTP-only method is ignored', async () => {
    const accepted = tcpApp.accepted()
    const notAllowed = await exchange(tcpNotAllowed, 'hello')
    expect(notAllowed.bytes).toBe(0)
    // The root-namespace DENY names `methods` (HTTP only): on TCP it is ignored, so it denies the whole port.
    const denied = await exchange(tcpDenied, 'hello')
    expect(denied.bytes).toBe(0)
    expect(tcpApp.accepted()).toBe(accepted)
    await eventually(async () =>
      proxy
        .stderr()
        .includes('rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-get-tcp]-rule[0]]'),
    )
  })
})

describe('admin /authz: the check on the running model', () => {
  it('explains a denial: the deciding rule and where it was written', async () => {
    const res = await proxy.admin(`/authz?method=GET&path=/admin/x&port=${portA}`)
    const text = await res.text()
    expect(res.status).toBe(200)
    expect(text).toContain(
      `DENY by ns[default]-policy[deny-admin]-rule[0] (DENY policy default/deny-admin at ${join(proxy.dir, 'istio', 'authz.yaml')}:`,
    )
    expect(text).toContain(
      'details: rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]',
    )
  })

  it('explains allow-nothing with the first field of each rule that did not match, as JSON too', async () => {
    const res = await proxy.admin('/authz?path=/nope&header=x-token:guess&format=json')
    const body = (await res.json()) as {
      allowed: boolean
      decidedBy: string
      steps: { rule: string; mismatch: string }[]
    }
    expect(body).toMatchObject({ allowed: false, decidedBy: 'none' })
    expect(body.steps.find((s) => s.rule === 'ns[default]-policy[allow-api]-rule[1]')?.mismatch).toBe(
      'when[0] request.headers[x-token] values ["letmein"] did not match "guess"',
    )
  })

  it('takes a principal: a peer identity the running proxy has not seen yet', async () => {
    const text = await (
      await proxy.admin('/authz?path=/sleep-only&principal=spiffe://cluster.local/ns/default/sa/sleep')
    ).text()
    expect(text.split('\n')[0]).toMatch(/^ALLOW by ns\[default\]-policy\[allow-api\]-rule\[3\]/)
  })

  it('answers 400 for a header that is not name:value', async () => {
    expect((await proxy.admin('/authz?header=broken')).status).toBe(400)
  })
})

describe('outrigger authz check (on the files)', () => {
  const check = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [mainScript, 'authz', 'check', '--config', join(proxy.dir, 'bootstrap.yaml'), ...args],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    )

  it('exits 1 on a denial, printing the policy and rule that decided it', () => {
    const r = check('--method', 'GET', '--path', '/admin', '--port', String(portA))
    expect(r.status).toBe(1)
    expect(r.stdout).toContain('DENY by ns[default]-policy[deny-admin]-rule[0]')
  })

  it('exits 0 when allowed, with --principal and --header', () => {
    const r = check('--path', '/sleep-only', '--principal', 'spiffe://cluster.local/ns/default/sa/sleep')
    expect(r.stdout.split('\n')[0]).toMatch(/^ALLOW by ns\[default\]-policy\[allow-api\]-rule\[3\]/)
    expect(r.status).toBe(0)
    expect(check('--path', '/x', '--header', 'x-token:letmein').status).toBe(0)
  })

  it('prints the first field that did not match for each rule', () => {
    const r = check('--path', '/sleep-only', '--principal', 'spiffe://cluster.local/ns/default/sa/other')
    expect(r.status).toBe(1)
    expect(r.stdout).toContain(
      'ALLOW  ns[default]-policy[allow-api]-rule[3]: no match: from[0].source.principals ["cluster.local/ns/default/sa/sleep"] did not match "cluster.local/ns/default/sa/other"',
    )
  })

  it('evaluates the TCP view with --tcp, and exits 2 without --config', () => {
    expect(check('--tcp', '--port', String(tcpDenied)).status).toBe(1)
    expect(check('--tcp', '--port', String(tcpAllowed)).status).toBe(0)
    expect(spawnSync(process.execPath, [mainScript, 'authz', 'check'], { encoding: 'utf8' }).status).toBe(2)
  })
})
