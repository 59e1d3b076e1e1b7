// Scenario: `outrigger explain` on the routing cases (header match, weighted split, redirect, direct response, fault, retries), online and offline, against what the real proxy does.

import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Explanation } from '../src/admin/explain.ts'
import { echoed, send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, mainScript, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

const run = promisify(execFile)

let proxy: ProxyProcess
let egress: number
let ingress: number
let v1: Upstream
let v2: Upstream
let failing: Upstream
let healthy: Upstream

const status500: Handler = (req, res) => {
  req.resume()
  res.writeHead(500)
  res.end('boom')
}

beforeAll(async () => {
  v1 = await startUpstream('v1')
  v2 = await startUpstream('v2')
  failing = await startUpstream('failing', status500)
  healthy = await startUpstream('healthy')
  ;[egress, ingress] = await freePorts(2)
  proxy = await startProxy({
    labels: { app: 'productpage', version: 'v1' },
    resources: {
      'sidecar.yaml': istio.sidecar({
        egress: [{ port: egress, protocol: 'HTTP', name: 'http' }],
        ingress: [istio.loopbackIngress(ingress, v1.port, 'HTTP', 'http')],
      }),
      'services.yaml': istio.yamlStream(
        istio.serviceEntry({
          name: 'reviews',
          hosts: ['reviews.default.svc.cluster.local'],
          ports: [{ number: egress, name: 'http', protocol: 'HTTP' }],
          endpoints: istio.versionEndpoints('http', { v1: v1.port, v2: v2.port }),
        }),
        istio.destinationRule({ host: 'reviews', subsets: istio.versionSubsets('v1', 'v2') }),
        // One endpoint answers 500: outlier detection ejects it for a minute after one error.
        istio.serviceWithPolicy(
          'flaky',
          [
            `{address: 127.0.0.1, ports: {http: ${failing.port}}}`,
            `{address: 127.0.0.1, ports: {http: ${healthy.port}}}`,
          ],
          '    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: {consecutive5xxErrors: 1, interval: 0.1s, baseEjectionTime: 60s, maxEjectionPercent: 100}',
          `[{number: ${egress}, name: http, protocol: HTTP}]`,
        ),
      ),
      'virtual-services.yaml': istio.yamlStream(
        `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - name: jason
      match:
        - headers: {end-user: {exact: jason}}
      route: [{destination: {host: reviews, subset: v2}}]
    - name: split
      match:
        - uri: {prefix: /split}
      route:
        - {destination: {host: reviews, subset: v1}, weight: 25}
        - {destination: {host: reviews, subset: v2}, weight: 75}
      retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
      timeout: 10s
    - name: source-labels-miss
      match:
        - sourceLabels: {app: someone-else}
      directResponse: {status: 418}
    - name: moved
      match:
        - uri: {exact: /moved}
      redirect: {uri: /elsewhere, authority: new.example:8443, scheme: https}
    - name: no-deletes
      match:
        - method: {exact: DELETE}
      directResponse: {status: 405, body: {string: "no deletes"}}
    - name: faulty
      match:
        - uri: {prefix: /faulty}
      fault:
        abort: {httpStatus: 503, percentage: {value: 100}}
        delay: {fixedDelay: 0.1s, percentage: {value: 50}}
      route: [{destination: {host: reviews, subset: v1}}]
    - name: fallback
      route: [{destination: {host: reviews, subset: v1}}]
`,
      ),
      'authz.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-frontend, namespace: default}
spec:
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/frontend]}}]
    to: [{operation: {paths: ["/api/*"]}}]
`,
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([v1?.close(), v2?.close(), failing?.close(), healthy?.close()])
})

function params(query: Record<string, string | string[]>): string {
  const p = new URLSearchParams()
  for (const [name, value] of Object.entries(query))
    for (const v of Array.isArray(value) ? value : [value]) p.append(name, v)
  return p.toString()
}

async function online(query: Record<string, string | string[]>): Promise<Explanation> {
  const res = await proxy.admin(`/explain?${params({ ...query, format: 'json' })}`)
  expect(res.status).toBe(200)
  return (await res.json()) as Explanation
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [mainScript, 'explain', ...args], {
      timeout: 20_000,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('explain online (admin /explain)', () => {
  it('gives the first failed condition of each earlier entry: a header that does not match', async () => {
    const e = await online({ authority: `reviews:${egress}`, path: '/other', header: 'end-user:bob' })
    expect(e.mode).toBe('online')
    expect(e.listener).toMatchObject({ found: true, port: egress, direction: 'outbound' })
    expect(e.virtualHost).toMatchObject({ virtualService: 'default/reviews', rule: 'exact' })
    expect(e.routes.map((r) => [r.name, r.matched, r.reason])).toEqual([
      ['jason', false, 'header end-user exact "jason" ≠ "bob"'],
      ['split', false, 'uri prefix "/split" ≠ "/other"'],
      ['moved', false, 'uri exact "/moved" ≠ "/other"'],
      ['no-deletes', false, 'method exact "DELETE" ≠ "GET"'],
      ['faulty', false, 'uri prefix "/faulty" ≠ "/other"'],
      ['fallback', true, null],
    ])
    // http[2] selects other workloads by sourceLabels: the compiler left it out, and explain says so.
    expect(e.leftOut).toEqual([expect.objectContaining({ http: 2, match: null })])
    // The router agrees: the request goes to the fallback's v1.
    expect(
      echoed(await send(egress, `reviews:${egress}`, '/other', { headers: { 'end-user': 'bob' } })).name,
    ).toBe('v1')

    const absent = await online({ authority: `reviews:${egress}`, path: '/other' })
    expect(absent.routes[0].reason).toBe('header end-user exact "jason" ≠ absent')
    const jason = await online({ authority: `reviews:${egress}`, header: 'end-user:jason' })
    expect(jason.routes).toEqual([
      expect.objectContaining({ name: 'jason', matched: true, http: 0, match: 0 }),
    ])
    expect(
      echoed(await send(egress, `reviews:${egress}`, '/', { headers: { 'end-user': 'jason' } })).name,
    ).toBe('v2')
  })

  it('shows a weighted split with weights, shares, the clusters and the retry and timeout', async () => {
    const e = await online({ authority: `reviews:${egress}`, path: '/split/x' })
    expect(e.action).toMatchObject({
      kind: 'forward',
      destinations: [
        { subset: 'v1', weight: 25, percent: 25, host: 'reviews.default.svc.cluster.local' },
        { subset: 'v2', weight: 75, percent: 75 },
      ],
    })
    expect(e.clusters.map((c) => c.endpoints.map((p) => p.address))).toEqual([
      [`127.0.0.1:${v1.port}`],
      [`127.0.0.1:${v2.port}`],
    ])
    expect(e.policies).toMatchObject({
      timeoutMs: 10_000,
      retry: { attempts: 3, perTryTimeoutMs: 2000, retryOn: ['5xx', 'connect-failure'] },
      fault: null,
    })
    const text = await (
      await proxy.admin(`/explain?${params({ authority: `reviews:${egress}`, path: '/split/x' })}`)
    ).text()
    expect(text).toContain('weight 25 (25%)')
    expect(text).toContain('weight 75 (75%)')
    expect(text).toMatch(/retries: 3 attempts, per try timeout 2s, retryOn 5xx,connect-failure/)
  })

  it('shows a redirect, a direct response and a fault with their settings, as the proxy answers them', async () => {
    const moved = await online({ authority: `reviews:${egress}`, path: '/moved' })
    expect(moved.action).toEqual({
      kind: 'redirect',
      status: 301,
      location: 'https://new.example:8443/elsewhere',
    })
    const real = await send(egress, `reviews:${egress}`, '/moved')
    expect([real.status, real.headers.location]).toEqual([301, 'https://new.example:8443/elsewhere'])

    const del = await online({ authority: `reviews:${egress}`, path: '/x', method: 'DELETE' })
    expect(del.action).toEqual({ kind: 'direct', status: 405, body: 'no deletes' })
    expect((await send(egress, `reviews:${egress}`, '/x', { method: 'DELETE' })).status).toBe(405)

    const faulty = await online({ authority: `reviews:${egress}`, path: '/faulty' })
    expect(faulty.policies?.fault).toEqual({
      delay: { ms: 100, percent: 50 },
      abort: { httpStatus: 503, grpcStatus: null, percent: 100 },
    })
  })

  it('says when no virtual host takes the authority (404 NR), as the router answers', async () => {
    const e = await online({ authority: 'nowhere.example:1234' })
    expect(e.virtualHost).toBeNull()
    expect(e.outcome).toContain('404 NR')
    expect((await send(egress, 'nowhere.example:1234', '/')).status).toBe(404)
  })

  it('shows an endpoint that outlier detection ejected', async () => {
    const flaky = `flaky:${egress}`
    const healthOf = async (): Promise<Record<string, string>> => {
      const e = await online({ authority: flaky })
      return Object.fromEntries(e.clusters[0].endpoints.map((p) => [p.address, p.health]))
    }
    expect(Object.values(await healthOf())).toEqual(['healthy', 'healthy'])
    await eventually(async () => {
      await send(egress, flaky, '/')
      return (await healthOf())[`127.0.0.1:${failing.port}`] === 'ejected'
    })
    expect(await healthOf()).toEqual({
      [`127.0.0.1:${failing.port}`]: 'ejected',
      [`127.0.0.1:${healthy.port}`]: 'healthy',
    })
    const e = await online({ authority: flaky })
    expect(e.clusters[0]).toMatchObject({
      health: 'live',
      loadBalancer: 'ROUND_ROBIN',
      outlierDetection: { consecutive5xxErrors: 1, baseEjectionTimeMs: 60_000 },
    })
  })

  it('inbound: the AuthorizationPolicy decision and the rule behind it, and the port’s mTLS mode', async () => {
    const base = { authority: `reviews:${ingress}`, direction: 'inbound', port: String(ingress) }
    const allowed = await online({
      ...base,
      path: '/api/v1',
      source_principal: 'spiffe://cluster.local/ns/default/sa/frontend',
    })
    expect(allowed.listener).toMatchObject({ found: true, direction: 'inbound', port: ingress })
    expect(allowed.authorization?.decision).toMatchObject({ allowed: true })
    expect(allowed.authorization?.decision.decidedBy).toMatch(/only-frontend/)
    expect(allowed.authorization?.mtls).toMatchObject({ mode: 'PERMISSIVE' })

    const denied = await online({ ...base, path: '/api/v1' })
    expect(denied.authorization?.decision).toMatchObject({ allowed: false })
    const step = denied.authorization?.decision.steps[0]
    expect(step?.mismatch).toMatch(/principal/)
    // The proxy denies the same plain-text request (no peer identity).
    expect((await send(ingress, `reviews:${ingress}`, '/api/v1')).status).toBe(403)
    const text = await cli(
      '--admin',
      `127.0.0.1:${proxy.adminPort}`,
      '--authority',
      base.authority,
      '--path',
      '/api/v1',
      '--direction',
      'inbound',
      '--port',
      String(ingress),
    )
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/Authorization\n {2}mTLS: PERMISSIVE/)
    expect(text.stdout).toMatch(/DENY: ALLOW policies apply and none of their rules matched/)
  })

  it('answers 400 to a query without an authority', async () => {
    const res = await proxy.admin('/explain?path=/x')
    expect(res.status).toBe(400)
    expect(await res.text()).toContain('--authority is required')
  })
})

describe('explain from the CLI', () => {
  const query = () => ['--authority', `reviews:${egress}`, '--path', '/split/a', '--header', 'end-user:bob']
  /** The route decision: virtual host, routes tried with their reasons, and the action. */
  const decision = (e: Explanation) => ({ vh: e.virtualHost?.name, routes: e.routes, action: e.action })

  it('online, offline on the bootstrap and offline on the resource files give the same route decision', async () => {
    const viaAdmin = await cli('--admin', `127.0.0.1:${proxy.adminPort}`, ...query(), '-o', 'json')
    const onBootstrap = await cli('--config', join(proxy.dir, 'bootstrap.yaml'), ...query(), '-o', 'json')
    const onFiles = await cli('--resources', join(proxy.dir, 'istio'), ...query(), '-o', 'json')
    for (const r of [viaAdmin, onBootstrap, onFiles]) expect(r.code, r.stderr).toBe(0)
    const [a, b, c] = [viaAdmin, onBootstrap, onFiles].map((r) => JSON.parse(r.stdout) as Explanation)
    expect(a.mode).toBe('online')
    expect(b.mode).toBe('offline')
    expect(decision(a).routes.map((r) => r.name)).toEqual(['jason', 'split'])
    expect(decision(b)).toEqual(decision(a))
    expect(decision(c)).toEqual(decision(a))
    // Endpoint health is live online only.
    expect(a.clusters[0].endpoints[0].health).toBe('healthy')
    expect(b.clusters[0].endpoints[0].health).toBe('unknown offline')
    expect(b.clusters[0].health).toBe('not known offline')
    // On resource files, the default node runs under capture: the virtual listener of the port takes it.
    expect(c.listener).toMatchObject({ found: true, capturedBy: 'virtualOutbound', port: egress })
  })

  it('prints the sections as text', async () => {
    const r = await cli('--config', join(proxy.dir, 'bootstrap.yaml'), ...query())
    expect(r.code, r.stderr).toBe(0)
    for (const section of ['Listener', 'Virtual host', 'Routes', 'Action', 'Cluster', 'Policies'])
      expect(r.stdout).toMatch(new RegExp(`^${section}$`, 'm'))
    expect(r.stdout).toContain('✗ http[0] match[0] "jason": header end-user exact "jason" ≠ "bob"')
    expect(r.stdout).toContain('✓ http[1] match[0] "split"')
    expect(r.stdout).toContain('unknown offline')
  })

  it('exits 2 with usage on bad parameters', async () => {
    for (const args of [
      ['--path', '/x'],
      ['--authority', 'reviews', '--port', 'eighty'],
      ['--authority', 'reviews', '--header', 'no-colon'],
      ['--authority', 'reviews', '--direction', 'sideways'],
      ['--authority', 'reviews', '--bogus'],
      ['--authority', 'reviews', '--config', 'a.yaml', '--admin', '127.0.0.1:1'],
    ]) {
      const r = await cli(...args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain('usage:')
    }
  })

  it('exits 1 when the admin API cannot be reached', async () => {
    const [closed] = await freePorts(1)
    const r = await cli('--admin', `127.0.0.1:${closed}`, '--authority', 'reviews')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('cannot reach the admin API')
  })
})
