// Scenario: two Outrigger sidecars over Istio mTLS tell each other who they are as istio-proxy does (HTTP headers, the TCP istio-peer-exchange), and neither app sees the exchange.

import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBootstrap } from '../src/bootstrap/load.ts'
import { ProxyRuntime } from '../src/proxy-runtime.ts'
import type { RequestRecord } from '../src/telemetry/request-record.ts'
import type { TcpRecord } from '../src/telemetry/tcp-record.ts'
import type { TrafficObserver } from '../src/telemetry/traffic-observer.ts'
import type { WorkloadMetadata } from '../src/telemetry/workload-metadata.ts'
import * as istio from './harness/istio.ts'
import { filesTls, issueCertificate, istioMutual, meshService, outrigger } from './harness/mesh.ts'
import { freePorts } from './harness/ports.ts'
import { eventually } from './harness/proxy-process.ts'
import { bannerHandler, exchange, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** istio/proxy source/extensions/filters/http/peer_metadata/filter_test.cc SampleIstioHeader (productpage-v1). */
const istioProxySample =
  'ChIKBWlzdGlvEgkaB3NpZGVjYXIKDgoIU1RTX1BPUlQSAhoAChEKB01FU0hfSUQSBhoEbWVzaAocChZTVEFDS0RSSVZFUl9U' +
  'T0tFTl9GSUxFEgIaAAowCihTVEFDS0RSSVZFUl9MT0dHSU5HX0VYUE9SVF9JTlRFUlZBTF9TRUNTEgQaAjIwCjYKDElOU1RB' +
  'TkNFX0lQUxImGiQxMC41Mi4wLjM0LGZlODA6OmEwNzU6MTFmZjpmZTVlOmYxY2QKFAoDYXBwEg0aC3Byb2R1Y3RwYWdlCisK' +
  'G1NFQ1VSRV9TVEFDS0RSSVZFUl9FTkRQT0lOVBIMGgpsb2NhbGhvc3Q6Cl0KGmt1YmVybmV0ZXMuaW8vbGltaXQtcmFuZ2Vy' +
  'Ej8aPUxpbWl0UmFuZ2VyIHBsdWdpbiBzZXQ6IGNwdSByZXF1ZXN0IGZvciBjb250YWluZXIgcHJvZHVjdHBhZ2UKIQoNV09S' +
  'S0xPQURfTkFNRRIQGg5wcm9kdWN0cGFnZS12MQofChFJTlRFUkNFUFRJT05fTU9ERRIKGghSRURJUkVDVAoeCgpDTFVTVEVS' +
  'X0lEEhAaDmNsaWVudC1jbHVzdGVyCkkKD0lTVElPX1BST1hZX1NIQRI2GjRpc3Rpby1wcm94eTo0N2U0NTU5YjhlNGYwZDUx' +
  'NmMwZDE3YjIzM2QxMjdhM2RlYjNkN2NlClIKBU9XTkVSEkkaR2t1YmVybmV0ZXM6Ly9hcGlzL2FwcHMvdjEvbmFtZXNwYWNl' +
  'cy9kZWZhdWx0L2RlcGxveW1lbnRzL3Byb2R1Y3RwYWdlLXYxCsEBCgZMQUJFTFMStgEqswEKFAoDYXBwEg0aC3Byb2R1Y3Rw' +
  'YWdlCiEKEXBvZC10ZW1wbGF0ZS1oYXNoEgwaCjg0OTc1YmM3NzgKMwofc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtbmFt' +
  'ZRIQGg5wcm9kdWN0cGFnZS12MQoyCiNzZXJ2aWNlLmlzdGlvLmlvL2Nhbm9uaWNhbC1yZXZpc2lvbhILGgl2ZXJzaW9uLTEK' +
  'DwoHdmVyc2lvbhIEGgJ2MQopCgROQU1FEiEaH3Byb2R1Y3RwYWdlLXYxLTg0OTc1YmM3NzgtcHh6MncKLQoIUE9EX05BTUUS' +
  'IRofcHJvZHVjdHBhZ2UtdjEtODQ5NzViYzc3OC1weHoydwoaCg1JU1RJT19WRVJTSU9OEgkaBzEuNS1kZXYKHwoVSU5DTFVE' +
  'RV9JTkJPVU5EX1BPUlRTEgYaBDkwODAKmwEKEVBMQVRGT1JNX01FVEFEQVRBEoUBKoIBCiYKFGdjcF9na2VfY2x1c3Rlcl9u' +
  'YW1lEg4aDHRlc3QtY2x1c3RlcgocCgxnY3BfbG9jYXRpb24SDBoKdXMtZWFzdDQtYgodCgtnY3BfcHJvamVjdBIOGgx0ZXN0' +
  'LXByb2plY3QKGwoSZ2NwX3Byb2plY3RfbnVtYmVyEgUaAzEyMwopCg9TRVJWSUNFX0FDQ09VTlQSFhoUYm9va2luZm8tcHJv' +
  'ZHVjdHBhZ2UKHQoQQ09ORklHX05BTUVTUEFDRRIJGgdkZWZhdWx0Cg8KB3ZlcnNpb24SBBoCdjEKHgoYU1RBQ0tEUklWRVJf' +
  'Uk9PVF9DQV9GSUxFEgIaAAohChFwb2QtdGVtcGxhdGUtaGFzaBIMGgo4NDk3NWJjNzc4Ch8KDkFQUF9DT05UQUlORVJTEg0a' +
  'C3Rlc3QsYm9uemFpChYKCU5BTUVTUEFDRRIJGgdkZWZhdWx0CjMKK1NUQUNLRFJJVkVSX01PTklUT1JJTkdfRVhQT1JUX0lO' +
  'VEVSVkFMX1NFQ1MSBBoCMjA'

const PEER_HEADERS = ['x-envoy-peer-metadata', 'x-envoy-peer-metadata-id']

/** What an observer copied of each record (a record is read only during the call). */
interface Seen {
  readonly direction: string
  readonly path: string
  readonly downstream: WorkloadMetadata | undefined
  readonly upstream: WorkloadMetadata | undefined
  readonly bytesReceived?: number
  readonly bytesSent?: number
}

function recorder(requests: Seen[], connections: Seen[]): TrafficObserver {
  return {
    name: 'peer-recorder',
    requestEnded(r: RequestRecord): void {
      requests.push({
        direction: r.direction,
        path: r.path,
        downstream: r.downstreamPeerMetadata,
        upstream: r.upstreamPeerMetadata,
      })
    },
    tcpEnded(r: TcpRecord): void {
      connections.push({
        direction: r.direction,
        path: '',
        downstream: r.downstreamPeerMetadata,
        upstream: r.upstreamPeerMetadata,
        bytesReceived: r.bytesReceived,
        bytesSent: r.bytesSent,
      })
    },
  }
}

const SLEEP: WorkloadMetadata = {
  workloadName: 'sleep-v1',
  namespace: 'default',
  canonicalService: 'sleep',
  canonicalRevision: 'v1',
  app: 'sleep',
  version: 'v1',
  clusterId: 'cluster-a',
  serviceAccount: 'sleep',
}
const REVIEWS: WorkloadMetadata = {
  workloadName: 'reviews-v2',
  namespace: 'default',
  canonicalService: 'reviews-canonical',
  canonicalRevision: 'v2',
  app: 'reviews',
  version: 'v2',
  clusterId: 'cluster-b',
  serviceAccount: 'reviews',
}

let dir: string
let sleepCerts: string
let httpApp: Upstream
let externalApp: Upstream
let tcpApp: TcpServer
let bannerApp: TcpServer
let server: ProxyRuntime
let client: ProxyRuntime
const serverRequests: Seen[] = []
const serverConnections: Seen[] = []
const clientRequests: Seen[] = []
const clientConnections: Seen[] = []
const port: Record<string, number> = {}

async function runtime(name: string, node: string, resources: string, certs: string): Promise<ProxyRuntime> {
  const [admin, health] = await freePorts(2)
  await writeFile(join(dir, `${name}.yaml`), resources)
  await writeFile(
    join(dir, `${name}-bootstrap.yaml`),
    `${node}listeners:\n  admin: {port: ${admin}}\n  health: {port: ${health}, address: 127.0.0.1}\n` +
      `resources: [${join(dir, `${name}.yaml`)}]\n${filesTls(certs)}`,
  )
  return new ProxyRuntime(await loadBootstrap(join(dir, `${name}-bootstrap.yaml`)))
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-peer-'))
  const caDir = join(dir, 'ca')
  outrigger('ca', 'init', '--out', caDir)
  sleepCerts = issueCertificate(caDir, 'spiffe://cluster.local/ns/default/sa/sleep', join(dir, 'sleep'))
  const reviewsCerts = issueCertificate(
    caDir,
    'spiffe://cluster.local/ns/default/sa/reviews',
    join(dir, 'reviews'),
  )
  httpApp = await startUpstream('reviews')
  externalApp = await startUpstream('external')
  tcpApp = await startTcpServer('reviews-tcp')
  bannerApp = await startTcpServer('reviews-smtp', bannerHandler)
  const [inHttp, inTcp, inBanner, outHttp, outTcp, outExternal, outBanner] = await freePorts(7)
  Object.assign(port, { inHttp, inTcp, inBanner, outHttp, outTcp, outExternal, outBanner })

  server = await runtime(
    'server',
    'node:\n  workload: reviews-v2\n  serviceAccount: reviews\n  cluster: cluster-b\n' +
      "  labels: {app: reviews, version: v2, 'service.istio.io/canonical-name': reviews-canonical}\n",
    istio.yamlStream(
      istio.sidecar({
        ingress: [
          istio.loopbackIngress(inHttp, httpApp.port, 'HTTP', 'http'),
          istio.loopbackIngress(inTcp, tcpApp.port, 'TCP', 'tcp'),
          istio.loopbackIngress(inBanner, bannerApp.port, 'TCP', 'smtp'),
        ],
      }),
    ),
    reviewsCerts,
  )
  client = await runtime(
    'client',
    'node:\n  workload: sleep-v1\n  serviceAccount: sleep\n  cluster: cluster-a\n  labels: {app: sleep, version: v1}\n',
    istio.yamlStream(
      istio.sidecar({
        egress: [
          { port: outHttp, protocol: 'HTTP', name: 'http' },
          { port: outTcp, protocol: 'TCP', name: 'tcp' },
          { port: outExternal, protocol: 'HTTP', name: 'external' },
          { port: outBanner, protocol: 'TCP', name: 'smtp' },
        ],
      }),
      meshService('reviews', outHttp, 'HTTP', inHttp),
      istioMutual('reviews'),
      meshService('reviews-tcp', outTcp, 'TCP', inTcp),
      istioMutual('reviews-tcp'),
      meshService('reviews-smtp', outBanner, 'TCP', inBanner),
      istioMutual('reviews-smtp'),
      // A MESH_EXTERNAL service (ServiceEntry's default location): no peer metadata goes there.
      istio.serviceEntry({
        name: 'external',
        ports: [{ number: outExternal, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1', ports: { http: externalApp.port } }],
      }),
    ),
    sleepCerts,
  )
  server.observers.add(recorder(serverRequests, serverConnections))
  client.observers.add(recorder(clientRequests, clientConnections))
  await server.start()
  await client.start()
}, 60_000)

afterAll(async () => {
  await client?.shutdown()
  await server?.shutdown()
  await httpApp?.close()
  await externalApp?.close()
  await tcpApp?.close()
  await bannerApp?.close()
  await rm(dir, { recursive: true, force: true })
})

function peerHeadersIn(headers: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(headers).filter((name) => PEER_HEADERS.includes(name.toLowerCase()))
}

describe('HTTP peer metadata between two sidecars (istio-proxy peer_metadata filter)', () => {
  it('each sidecar learns the other workload; neither app sees the headers, even ones the client app forged', async () => {
    serverRequests.length = 0
    clientRequests.length = 0
    const before = httpApp.seen.length
    const res = await request(`http://127.0.0.1:${port.outHttp}/ratings`, {
      headers: {
        host: 'reviews',
        'x-envoy-peer-metadata': istioProxySample,
        'x-envoy-peer-metadata-id': 'forged',
      },
    })
    expect(res.statusCode).toBe(200)
    await res.body.text()
    expect(peerHeadersIn(res.headers)).toEqual([])
    expect(peerHeadersIn(httpApp.seen[before].headers)).toEqual([])
    await eventually(async () => serverRequests.length === 1 && clientRequests.length === 1)
    // The server saw the client sidecar's metadata, not what the client app forged.
    expect(serverRequests[0]).toMatchObject({ direction: 'inbound', path: '/ratings', downstream: SLEEP })
    expect(clientRequests[0]).toMatchObject({ direction: 'outbound', path: '/ratings', upstream: REVIEWS })
  })

  it('answers a plain-text mesh peer that sent its metadata with its own, and decodes an istio-proxy header', async () => {
    serverRequests.length = 0
    const before = httpApp.seen.length
    const res = await request(`http://127.0.0.1:${port.inHttp}/direct`, {
      // HTTP/1.1 header names in any case (sidecars send them lowercase).
      headers: {
        'X-Envoy-Peer-Metadata': istioProxySample,
        'X-Envoy-Peer-Metadata-Id': 'sidecar~10.52.0.34~pp',
      },
    })
    await res.body.text()
    expect(res.statusCode).toBe(200)
    const value = res.headers['x-envoy-peer-metadata']
    expect(typeof value).toBe('string')
    expect(res.headers['x-envoy-peer-metadata-id']).toMatch(
      /^sidecar~[^~]+~reviews-v2-[^~]*\.default~default\.svc\.cluster\.local$/,
    )
    expect(server.peerMetadata.fromHeaders(undefined, value as string)).toEqual(REVIEWS)
    expect(peerHeadersIn(httpApp.seen[before].headers)).toEqual([])
    await eventually(async () => serverRequests.length === 1)
    expect(serverRequests[0].downstream).toMatchObject({ workloadName: 'productpage-v1', app: 'productpage' })
  })

  it('tells nothing to a client that is not a mesh workload (no headers in, none out)', async () => {
    serverRequests.length = 0
    const res = await request(`http://127.0.0.1:${port.inHttp}/plain`)
    await res.body.text()
    expect(peerHeadersIn(res.headers)).toEqual([])
    await eventually(async () => serverRequests.length === 1)
    expect(serverRequests[0].downstream).toBeUndefined()
  })

  it('ignores a bad or oversized header safely: the request is served, nothing decoded, the header stripped', async () => {
    for (const bad of ['%%% not base64 protobuf %%%', 'A'.repeat(20_000)]) {
      serverRequests.length = 0
      const before = httpApp.seen.length
      const res = await request(`http://127.0.0.1:${port.inHttp}/bad`, {
        headers: { 'x-envoy-peer-metadata': bad, 'x-envoy-peer-metadata-id': 'bad' },
      })
      await res.body.text()
      expect(res.statusCode).toBe(200)
      expect(peerHeadersIn(httpApp.seen[before].headers)).toEqual([])
      expect(peerHeadersIn(res.headers)).toEqual([])
      await eventually(async () => serverRequests.length === 1)
      expect(serverRequests[0].downstream).toBeUndefined()
    }
  })

  it('sends nothing to a MESH_EXTERNAL service (Istio IN_MESH), and learns nothing from it', async () => {
    clientRequests.length = 0
    const before = externalApp.seen.length
    const res = await request(`http://127.0.0.1:${port.outExternal}/out`, { headers: { host: 'external' } })
    await res.body.text()
    expect(res.statusCode).toBe(200)
    expect(peerHeadersIn(externalApp.seen[before].headers)).toEqual([])
    await eventually(async () => clientRequests.length === 1)
    expect(clientRequests[0].upstream).toBeUndefined()
  })
})

describe('TCP peer metadata between two sidecars (ALPN istio-peer-exchange)', () => {
  it('each side learns the other; the app gets exactly its bytes, and only app bytes are counted', async () => {
    serverConnections.length = 0
    clientConnections.length = 0
    const payload = 'hello over the peer exchange'
    const result = await exchange(port.outTcp, payload)
    expect(result.error).toBeUndefined()
    expect(result.text).toBe(payload)
    await eventually(async () => serverConnections.length === 1 && clientConnections.length === 1)
    expect(serverConnections[0]).toMatchObject({
      direction: 'inbound',
      downstream: SLEEP,
      bytesReceived: payload.length,
      bytesSent: payload.length,
    })
    expect(clientConnections[0]).toMatchObject({
      direction: 'outbound',
      upstream: REVIEWS,
      bytesReceived: payload.length,
      bytesSent: payload.length,
    })
  })

  it('serves a server-first exchange: nothing waits for the client to speak', async () => {
    serverConnections.length = 0
    // A client that only listens and then closes: the frames still cross, and the connection ends cleanly.
    const result = await exchange(port.outTcp, undefined, { timeoutMs: 3_000 })
    expect(result.error).toBeUndefined()
    expect(result.text).toBe('')
    await eventually(async () => serverConnections.length === 1)
    expect(serverConnections[0].downstream).toEqual(SLEEP)
  })

  it('carries a server-first protocol: the banner follows the server frame, even in the same read', async () => {
    clientConnections.length = 0
    const result = await exchange(port.outBanner, 'EHLO\r\n', { keepOpen: true, timeoutMs: 1_000 })
    expect(result.text).toBe('220 reviews-smtp ready\r\nEHLO\r\n')
    await eventually(async () => clientConnections.length === 1)
    expect(clientConnections[0]).toMatchObject({ upstream: REVIEWS, bytesSent: result.bytes })
  })

  it('treats a peer that took the ALPN but sends no frame as istio-proxy does: its bytes are app data', async () => {
    serverConnections.length = 0
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: port.inTcp,
      cert: readFileSync(join(sleepCerts, 'cert-chain.pem')),
      key: readFileSync(join(sleepCerts, 'key.pem')),
      ca: readFileSync(join(sleepCerts, 'root-cert.pem')),
      ALPNProtocols: ['istio-peer-exchange', 'istio'],
      checkServerIdentity: () => undefined,
    })
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
    expect(socket.alpnProtocol).toBe('istio-peer-exchange')
    const chunks: Buffer[] = []
    socket.on('data', (d: Buffer) => chunks.push(d))
    // At least the frame header's 8 bytes: fewer, and istio-proxy (like Outrigger) waits for the rest.
    const appBytes = 'ping from an app'
    socket.write(appBytes)
    await eventually(async () => Buffer.concat(chunks).toString('latin1').endsWith(appBytes))
    socket.end()
    const received = Buffer.concat(chunks)
    // The server's own frame comes first (magic 0x3D230467), then the echo of the app bytes.
    expect(received.readUInt32BE(0)).toBe(0x3d230467)
    const frameLength = 8 + received.readUInt32BE(4)
    expect(received.subarray(frameLength).toString('latin1')).toBe(appBytes)
    await eventually(async () => serverConnections.length === 1)
    expect(serverConnections[0]).toMatchObject({ downstream: undefined, bytesReceived: appBytes.length })
  })
})
