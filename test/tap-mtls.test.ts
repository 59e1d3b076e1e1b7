// Scenario: a tap on the server sidecar of an Istio mTLS pair shows the client workload's SPIFFE identity as the peer.

import { request as httpRequest, type IncomingMessage } from 'node:http'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TapEvent } from '../src/live/live-api.ts'
import { send } from './harness/client.ts'
import { createMeshCa, type MeshCa, strictMtls } from './harness/mesh.ts'
import { type PortTable, startClientSidecar, startServerSidecar } from './harness/mesh-pair.ts'
import type { ProxyProcess } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let ca: MeshCa
let app: Upstream
let server: ProxyProcess
let client: ProxyProcess
const port: PortTable = {}

beforeAll(async () => {
  ca = await createMeshCa('outrigger-tap-mtls-')
  app = await startUpstream('reviews')
  server = await startServerSidecar({
    ports: port,
    inbound: [{ port: 'in', appPort: app.port, protocol: 'HTTP', name: 'http' }],
    policies: () => [strictMtls()],
    tls: ca.builtInTls(),
  })
  client = await startClientSidecar({
    ports: port,
    routes: [{ listen: 'out', name: 'http', host: 'reviews', protocol: 'HTTP', target: 'in' }],
    tls: ca.builtInTls(),
  })
}, 60_000)

afterAll(async () => {
  await client?.stop()
  await server?.stop()
  await app?.close()
  await ca?.remove()
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
      const reply = await send(port.out, 'reviews', '/mtls')
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
  expect(clientEvents[0]?.upstreamHost).toBe(`127.0.0.1:${port.in}`)
}, 30_000)
