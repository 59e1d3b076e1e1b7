import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, formatMessage } from '../config/messages.ts'
import { loadBootstrap } from './load.ts'

describe('loadBootstrap', () => {
  let dir: string
  let file: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-bootstrap-'))
    file = join(dir, 'bootstrap.yaml')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function failure(text: string): Promise<string> {
    await writeFile(file, text)
    const error = await loadBootstrap(file).then(
      () => undefined,
      (thrown: unknown) => thrown,
    )
    expect(error).toBeInstanceOf(ConfigError)
    return (error as ConfigError).message
  }

  it('loads the design example, resolving paths against the bootstrap directory and warning about keys not built yet', async () => {
    await writeFile(
      file,
      `node:
  workload: reviews-v2
  namespace: default
  serviceAccount: bookinfo-reviews
  labels: {app: reviews, version: v2}
listeners:
  admin: {port: 15000, address: 127.0.0.1}
capture: none
resources: [./istio/, /etc/istio/extra.yaml]
tls:
  certChain: ./certs/cert-chain.pem
  privateKey: ./certs/key.pem
  rootCert: /etc/certs/root-cert.pem
telemetry:
  accessLog: {path: /dev/stdout, encoding: JSON}
terminationDrainDuration: 10s
concurrency: 2
`,
    )
    const bootstrap = await loadBootstrap(file)
    expect(bootstrap.file).toBe(file)
    expect(bootstrap.node).toEqual({
      workload: 'reviews-v2',
      namespace: 'default',
      serviceAccount: 'bookinfo-reviews',
      labels: { app: 'reviews', version: 'v2' },
      cluster: 'Kubernetes',
      trustDomain: 'cluster.local',
      locality: '',
    })
    expect(bootstrap.resources).toEqual([join(dir, 'istio'), '/etc/istio/extra.yaml'])
    // The workload certificate's paths resolve relative to the bootstrap file.
    expect(bootstrap.tls).toEqual({
      certChain: join(dir, 'certs/cert-chain.pem'),
      privateKey: join(dir, 'certs/key.pem'),
      rootCert: '/etc/certs/root-cert.pem',
    })
    expect(bootstrap.telemetry).toEqual({ accessLog: { path: '/dev/stdout', encoding: 'JSON' } })
    expect(bootstrap.warnings?.map(formatMessage) ?? []).toEqual([])
    expect(bootstrap.terminationDrainDuration).toBe('10s')
    expect(bootstrap.concurrency).toBe(2)
  })

  it('treats an empty file as all defaults', async () => {
    await writeFile(file, '# nothing here\n')
    const bootstrap = await loadBootstrap(file)
    expect(bootstrap.listeners.admin).toEqual({ port: 15000, address: '127.0.0.1' })
    expect(bootstrap.tls).toBeUndefined()
    expect(bootstrap.warnings).toEqual([])
  })

  it('warns that the capture listeners are not bound without capture', async () => {
    await writeFile(
      file,
      `listeners:\n  outbound: {port: 15001}\n  inbound: {port: 15006}\n  stats: {port: 15090}\n`,
    )
    const bootstrap = await loadBootstrap(file)
    expect(bootstrap.warnings?.map(formatMessage)).toEqual([
      `${file}:2: warning: field 'listeners.outbound' is used only with traffic capture (capture: iptables | tproxy): with capture: none it is not bound`,
      `${file}:3: warning: field 'listeners.inbound' is used only with traffic capture (capture: iptables | tproxy): with capture: none it is not bound`,
    ])
  })

  it('reads the capture listeners (bound under capture: iptables | tproxy) with their defaults', async () => {
    await writeFile(
      file,
      `listeners:
  outbound: {port: 15101}
  inbound: {address: '::'}
capture: tproxy
`,
    )
    const bootstrap = await loadBootstrap(file)
    expect(bootstrap.warnings).toEqual([])
    expect(bootstrap.capture).toBe('tproxy')
    expect(bootstrap.listeners.outbound).toEqual({ port: 15101 })
    expect(bootstrap.listeners.inbound).toEqual({ port: 15006, address: '::' })
  })

  it('reports a missing file at line 0', async () => {
    const missing = join(dir, 'missing.yaml')
    await expect(loadBootstrap(missing)).rejects.toThrow(`${missing}:0: no such file`)
  })

  it('reports every error with its line', async () => {
    const message = await failure(`node:
  workload: reviews
  namespce: default
listeners:
  admin: {port: 99999}
  inbound: {port: 15006, address: localhost}
capture: ebpf
terminationDrainDuration: 5
concurrency: 0
`)
    expect(message).toBe(
      [
        `${file}:3: unknown field 'node.namespce'`,
        `${file}:5: field 'listeners.admin.port': port number 99999 must be in the range 0..65535`,
        `${file}:6: field 'listeners.inbound.address': 'localhost' is not a valid IP address`,
        `${file}:7: field 'capture': invalid value "ebpf", expected one of none, iptables, tproxy`,
        `${file}:8: field 'terminationDrainDuration': expected a string, got number 5`,
        `${file}:9: field 'concurrency': must be an integer ≥ 1`,
      ].join('\n'),
    )
  })

  it('reports a bad duration and incomplete TLS settings', async () => {
    const message = await failure('terminationDrainDuration: 5 sec\ntls:\n  certChain: a.pem\n')
    expect(message).toBe(
      [
        `${file}:1: field 'terminationDrainDuration': invalid duration '5 sec': expected a number with a unit (ns, us, ms, s, m, h), e.g. 100ms, 1.5s, 1h2m`,
        `${file}:2: missing required field 'tls.privateKey'`,
        `${file}:2: missing required field 'tls.rootCert'`,
      ].join('\n'),
    )
  })

  it('reads tls: {ca, ttl} (built-in issuing), exclusive with the three files, naming the key at fault', async () => {
    await writeFile(file, 'tls:\n  ca: ./ca\n  ttl: 4s\n')
    expect((await loadBootstrap(file)).tls).toEqual({ ca: join(dir, 'ca'), ttl: '4s' })
    await writeFile(file, 'tls:\n  ca: /etc/outrigger/ca\n')
    expect((await loadBootstrap(file)).tls).toEqual({ ca: '/etc/outrigger/ca', ttl: '24h' })
    expect(await failure('tls:\n  ca: ./ca\n  certChain: c.pem\n  rootCert: r.pem\n')).toBe(
      [
        `${file}:3: field 'tls.certChain': cannot be given with 'tls.ca': either the three files or a CA to issue from`,
        `${file}:4: field 'tls.rootCert': cannot be given with 'tls.ca': either the three files or a CA to issue from`,
      ].join('\n'),
    )
    expect(await failure('tls: {}\n')).toBe(
      `${file}:1: field 'tls': needs either 'certChain', 'privateKey' and 'rootCert' (files the platform writes) or 'ca' (a CA directory to issue from)`,
    )
    expect(
      await failure('tls:\n  certChain: c.pem\n  privateKey: k.pem\n  rootCert: r.pem\n  ttl: 1h\n'),
    ).toBe(`${file}:5: field 'tls.ttl': is used only with 'tls.ca' (built-in issuing)`)
    expect(await failure('tls:\n  ca: ./ca\n  ttl: 10ms\n')).toBe(
      `${file}:3: field 'tls.ttl': '10ms' is shorter than 1s`,
    )
  })

  it('reads pathNormalization as meshConfig does, and reports a bad type or field with its line', async () => {
    await writeFile(file, 'pathNormalization:\n  normalization: DECODE_AND_MERGE_SLASHES\n')
    expect((await loadBootstrap(file)).pathNormalization).toEqual({
      normalization: 'DECODE_AND_MERGE_SLASHES',
    })
    expect(await failure('pathNormalization:\n  normalization: MERGE\n  mode: x\n')).toBe(
      [
        `${file}:2: field 'pathNormalization.normalization': invalid value "MERGE", expected one of DEFAULT, NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES`,
        `${file}:3: unknown field 'pathNormalization.mode'`,
      ].join('\n'),
    )
  })

  it('reports YAML errors, extra documents and non-map files', async () => {
    expect(await failure('node:\n  workload: a\n workload: b\n')).toBe(
      `${file}:3: invalid YAML: All mapping items must start at the same column`,
    )
    expect(await failure('node: {}\n---\ncapture: none\n')).toBe(
      `${file}:3: a bootstrap file holds a single YAML document`,
    )
    expect(await failure('- node\n')).toBe(
      `${file}:1: the bootstrap must be a map (node, listeners, resources, …)`,
    )
  })
})
