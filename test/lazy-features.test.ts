// Scenario: optional features load their modules only when configured (admin GET /modules of a real proxy process), and a reload that turns one on loads it.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CertificateAuthority } from '../src/ca/certificate-authority.ts'
import type { LoadedModules } from '../src/telemetry/loaded-modules.ts'
import { send } from './harness/client.ts'
import { egressSidecar, ingressSidecar, loopbackService, virtualService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** Each optional feature: the packages and the proxy's own modules it brings, none of them loaded without it. */
const features = {
  live: { packages: ['hdr-histogram-js'], files: ['/live/live-stats.', '/live/windowed-histogram.'] },
  jwt: { packages: ['jose'], files: [] },
  ca: { packages: ['node-forge'], files: ['/ca/certificate-authority.'] },
  tracing: { packages: [], files: ['/telemetry/otlp-span-sink.'] },
  regex: { packages: ['re2js'], files: [] },
} as const

/** A feature's modules that `loaded` holds. */
function loadedOf(loaded: LoadedModules, feature: keyof typeof features): string[] {
  const { packages, files } = features[feature]
  return [
    ...packages.filter((name) => loaded.packages[name] !== undefined),
    ...loaded.modules.filter((url) => files.some((file) => url.includes(file) && !url.includes('-loader.'))),
  ]
}

async function modulesOf(proxy: ProxyProcess): Promise<LoadedModules> {
  const res = await proxy.admin('/modules')
  expect(res.status).toBe(200)
  return (await res.json()) as LoadedModules
}

const requestAuthentication = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  jwtRules:
  - issuer: https://issuer.example
    jwks: '{"keys": []}'
`

let app: Upstream
let dir: string
const proxies: ProxyProcess[] = []

beforeAll(async () => {
  app = await startUpstream('app')
  dir = await mkdtemp(join(tmpdir(), 'outrigger-lazy-'))
})

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()))
  await app?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('optional features', () => {
  it('none is loaded by a sidecar that does not configure it, and a reload that adds a RequestAuthentication loads jose', async () => {
    const [port] = await freePorts(1)
    const proxy = await startProxy({
      resources: { 'sidecar.yaml': ingressSidecar(port, app.port) },
      env: { OUTRIGGER_RECORD_MODULES: '1' },
    })
    proxies.push(proxy)
    expect((await send(port, 'app')).status).toBe(200)
    const loaded = await modulesOf(proxy)
    // The list is whole: the data path's own modules and packages are in it.
    expect(loaded.recorded).toBe(true)
    expect(loaded.packages.undici).toBeGreaterThan(0)
    // Only undici's dispatchers, not its index (fetch, cache stores, mock agents: about 10 MiB): upstream/undici-parts.ts.
    expect(loaded.modules.filter((url) => url.endsWith('/node_modules/undici/index.js'))).toEqual([])
    expect(loaded.modules.some((url) => url.includes('/router/router-filter.'))).toBe(true)
    for (const feature of Object.keys(features) as (keyof typeof features)[])
      expect({ feature, loaded: loadedOf(loaded, feature) }).toEqual({ feature, loaded: [] })
    // Issue 17: with tracing off no OpenTelemetry module at all (prom-client's index would bring its API).
    expect(Object.keys(loaded.packages).filter((name) => name.startsWith('@opentelemetry/'))).toEqual([])
    // node's own copy of undici (its fetch and WebSocket) is not the one the proxy uses: src/protocol/node-http.ts.
    expect(loaded.builtins).not.toContain('internal/deps/undici/undici')

    await proxy.writeResource('jwt.yaml', requestAuthentication)
    await eventually(async () => loadedOf(await modulesOf(proxy), 'jwt').length > 0, 10_000)
    // The new model applies the JWT filter: a malformed token is refused as Envoy's jwt_authn does.
    await eventually(
      async () =>
        (await send(port, 'app', '/', { headers: { authorization: 'Bearer x.y.z' } })).status === 401,
    )
  })

  it('each loads when the bootstrap configures it: live view, built-in CA, tracing', async () => {
    const caDirectory = join(dir, 'ca')
    await CertificateAuthority.init(caDirectory, { trustDomain: 'cluster.local' })
    const [port, otlpPort] = await freePorts(2)
    const proxy = await startProxy({
      resources: { 'sidecar.yaml': ingressSidecar(port, app.port) },
      env: { OUTRIGGER_RECORD_MODULES: '1' },
      extraBootstrap: [
        'live: {enabled: true}',
        `tls: {ca: ${caDirectory}, ttl: 24h}`,
        `telemetry:\n  tracing: {otlpEndpoint: 'http://127.0.0.1:${otlpPort}/v1/traces', samplingPercent: 0}`,
        '',
      ].join('\n'),
    })
    proxies.push(proxy)
    expect((await send(port, 'app')).status).toBe(200)
    const loaded = await modulesOf(proxy)
    for (const feature of ['live', 'ca', 'tracing'] as const)
      expect({ feature, missing: loadedOf(loaded, feature).length === 0 }).toEqual({
        feature,
        missing: false,
      })
    // And they work: the live view counts the request, the identity was issued.
    await eventually(async () => (await proxy.admin('/live/stat?by=listener')).status === 200)
    const certs = (await (await proxy.admin('/certs')).json()) as { certificates: unknown[] }
    expect(certs.certificates.length).toBeGreaterThan(0)
  })

  it('re2js loads only once a route has a regex, and then the regex routes', async () => {
    const [port] = await freePorts(1)
    const proxy = await startProxy({
      resources: { 'sidecar.yaml': egressSidecar(port), 'app.yaml': loopbackService('app', 80, app.port) },
      env: { OUTRIGGER_RECORD_MODULES: '1' },
    })
    proxies.push(proxy)
    expect((await send(port, 'app', '/items/12')).status).toBe(200)
    expect(loadedOf(await modulesOf(proxy), 'regex')).toEqual([])

    await proxy.writeResource(
      'vs.yaml',
      virtualService({
        hosts: ['app'],
        http: [{ match: [{ uri: { regex: '/items/[0-9]+' } }], route: [{ destination: { host: 'app' } }] }],
      }),
    )
    await eventually(async () => (await send(port, 'app', '/items/x')).status === 404, 10_000)
    expect(loadedOf(await modulesOf(proxy), 'regex')).toEqual(['re2js'])
    expect((await send(port, 'app', '/items/12')).status).toBe(200)
  })
})
