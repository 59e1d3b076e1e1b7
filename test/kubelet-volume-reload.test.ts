// Scenario: Istio resources and certificates mounted as Kubernetes volumes reload when kubelet swaps `..data`.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, send } from './harness/client.ts'
import {
  destinationRule,
  loopbackIngress,
  routeTo,
  serviceEntry,
  sidecar,
  versionEndpoints,
  versionSubsets,
  virtualService,
  yamlStream,
} from './harness/istio.ts'
import { KubeletVolume } from './harness/kubelet-volume.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type TestCa, testCa } from './harness/tls-ca.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let ca: TestCa
let configMap: KubeletVolume
let secret: KubeletVolume
let proxy: ProxyProcess
let v1: Upstream
let v2: Upstream
let egress: number
let tlsIngress: number
const dirs: string[] = []

function resources(subset: string): Record<string, string> {
  return {
    'sidecar.yaml': sidecar({
      egress: [{ port: egress, protocol: 'HTTP', name: 'http' }],
      ingress: [
        {
          ...loopbackIngress(tlsIngress, v1.port, 'HTTPS', 'https'),
          tls: {
            mode: 'SIMPLE',
            serverCertificate: secret.path('tls.crt'),
            privateKey: secret.path('tls.key'),
          },
        },
      ],
    }),
    'services.yaml': yamlStream(
      serviceEntry({
        name: 'reviews',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        endpoints: versionEndpoints('http', { v1: v1.port, v2: v2.port }),
      }),
      destinationRule({ host: 'reviews', subsets: versionSubsets('v1', 'v2') }),
    ),
    'vs.yaml': virtualService({ hosts: ['reviews'], http: [{ route: routeTo('reviews', subset) }] }),
  }
}

function certificate(cn: string): Record<string, string> {
  const issued = ca.issue(cn, ['DNS:localhost', 'IP:127.0.0.1'])
  return { 'tls.crt': issued.cert, 'tls.key': issued.key }
}

/** The CN of the certificate a new TLS connection to `port` is shown. */
function serverCnOf(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.cert }, () => {
      const cn = String(socket.getPeerCertificate().subject?.CN ?? '')
      socket.destroy()
      resolve(cn)
    })
    socket.on('error', reject)
  })
}

beforeAll(async () => {
  ca = testCa('outrigger-volume-root')
  v1 = await startUpstream('v1')
  v2 = await startUpstream('v2')
  ;[egress, tlsIngress] = await freePorts(2)
  for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(join(tmpdir(), 'outrigger-volume-')))
  secret = await KubeletVolume.create(dirs[1], certificate('first'))
  configMap = await KubeletVolume.create(dirs[0], resources('v1'))
  // The resource files by name, as a bootstrap lists files of a mounted ConfigMap.
  proxy = await startProxy({
    resources: {},
    resourcePaths: ['sidecar.yaml', 'services.yaml', 'vs.yaml'].map((name) => configMap.path(name)),
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([v1?.close(), v2?.close()])
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
})

describe('kubelet volume updates (pkg/volume/util/atomic_writer.go: ..data renamed over)', () => {
  it('reloads the Istio resources when the ConfigMap volume is swapped', async () => {
    expect(echoed(await send(egress, 'reviews', '/')).name).toBe('v1')
    await configMap.update(resources('v2'))
    await eventually(async () => echoed(await send(egress, 'reviews', '/')).name === 'v2')
    expect(proxy.stderr()).toContain('config reloaded')
  })

  it('serves new TLS connections with the certificate from the swapped Secret volume', async () => {
    expect(await serverCnOf(tlsIngress)).toBe('first')
    await secret.update(certificate('second'))
    await eventually(async () => (await serverCnOf(tlsIngress)) === 'second')
  })
})
