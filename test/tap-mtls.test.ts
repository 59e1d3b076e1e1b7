// Scenario: a tap on the server sidecar of an Istio mTLS pair shows the client workload's SPIFFE identity as the peer.

import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TapEvent } from '../src/live/live-api.ts'
import { send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { istioMutual, meshService, outrigger, retryingPortClash } from './harness/mesh.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let dir: string
let app: Upstream
let server: ProxyProcess
let client: ProxyProcess
let inbound = 0
let outbound = 0

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-tap-mtls-'))
  const caDir = join(dir, 'ca')
  outrigger('ca', 'init', '--out', caDir)
  const builtIn = `tls:\n  ca: ${caDir}\n`
  app = await startUpstream('reviews')
  server = await retryingPortClash(async () => {
    ;[inbound] = await freePorts(1)
    return startProxy({
      labels: { app: 'reviews' },
      serviceAccount: 'reviews',
      resources: {
        'server.yaml': istio.yamlStream(
          istio.sidecar({ ingress: [istio.loopbackIngress(inbound, app.port, 'HTTP', 'http')] }),
          `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
`,
        ),
      },
      extraBootstrap: builtIn,
    })
  })
  client = await retryingPortClash(async () => {
    ;[outbound] = await freePorts(1)
    return startProxy({
      labels: { app: 'sleep' },
      serviceAccount: 'sleep',
      resources: {
        'client.yaml': istio.yamlStream(
          istio.sidecar({ egress: [{ port: outbound, protocol: 'HTTP', name: 'http' }] }),
          meshService('reviews', outbound, 'HTTP', inbound),
          istioMutual('reviews'),
        ),
      },
      extraBootstrap: builtIn,
    })
  })
}, 60_000)

afterAll(async () => {
  await client?.stop()
  await server?.stop()
  await app?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** The NDJSON events of a tap that ends after `max`. */
async function tapUntilMax(
  proxy: ProxyProcess,
  query: string,
  traffic: () => Promise<void>,
): Promise<TapEvent[]> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    httpRequest({ port: proxy.adminPort, host: '127.0.0.1', path: `/tap?${query}`, agent: false }, resolve)
      .on('error', reject)
      .end()
  })
  expect(res.statusCode).toBe(200)
  let text = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    text += chunk
  })
  const ended = new Promise<void>((resolve) => res.once('end', resolve))
  await traffic()
  await ended
  return text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as TapEvent)
}

it("shows the mTLS peer's SPIFFE identity inbound, and none outbound from the app", async () => {
  let clientEvents: TapEvent[] = []
  const serverEvents = await tapUntilMax(server, 'direction=inbound&max=1', async () => {
    clientEvents = await tapUntilMax(client, 'direction=outbound&max=1', async () => {
      const reply = await send(outbound, 'reviews', '/mtls')
      expect(reply.status).toBe(200)
    })
  })
  expect(serverEvents).toHaveLength(1)
  expect(serverEvents[0]).toMatchObject({
    direction: 'inbound',
    path: '/mtls',
    status: 200,
    peer: 'spiffe://cluster.local/ns/default/sa/sleep',
    upstreamHost: `127.0.0.1:${app.port}`,
  })
  // The app reached its own sidecar in plain text: no peer.
  expect(clientEvents[0]).toMatchObject({ direction: 'outbound', path: '/mtls', peer: '' })
  expect(clientEvents[0]?.upstreamHost).toBe(`127.0.0.1:${inbound}`)
}, 30_000)
