// Scenario: bad TLS input to a sidecar pair (garbage, expired, wrong-root and wrong-identity certificates, stalled handshakes, old suites), each refused with its reason while a good request stream flows.

import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, mainScript, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type TestCa, testCa } from './harness/tls-ca.ts'
import { inTempDir, openssl, type TestCert } from './harness/tls-cert.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep'
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews'
/** src/tls/tls-defaults.ts TLS_HANDSHAKE_TIMEOUT_MS (Envoy's default listener_filters_timeout). */
const HANDSHAKE_TIMEOUT_MS = 15_000

let ca: TestCa
let otherCa: TestCa
let sleepCert: TestCert
let dir: string
let app: Upstream
let server: ProxyProcess
let client: ProxyProcess
let inHttp: number
let outReviews: number
let outRatings: number

/** A good stream of requests through both sidecars (the client's pool) and of fresh mTLS handshakes to the server. */
const stream = { running: true, ok: 0, failures: [] as string[], done: Promise.resolve() }

function workloadTls(name: string, cert: TestCert): string {
  writeFileSync(join(dir, `${name}-key.pem`), cert.key)
  writeFileSync(join(dir, `${name}-chain.pem`), cert.cert)
  return `tls:
  certChain: ${join(dir, `${name}-chain.pem`)}
  privateKey: ${join(dir, `${name}-key.pem`)}
  rootCert: ${join(dir, 'root-cert.pem')}
`
}

/** A certificate for `spiffe` signed by `signer` that was valid for one day in 2020 (`openssl ca` can date it). */
function expiredCert(signer: TestCa, spiffe: string): TestCert {
  return inTempDir((d) => {
    const path = (name: string): string => join(d, name)
    writeFileSync(path('ca-key.pem'), signer.key)
    writeFileSync(path('ca-cert.pem'), signer.cert)
    writeFileSync(path('index.txt'), '')
    writeFileSync(path('serial'), '0a1b2c3d\n')
    writeFileSync(
      path('ca.cnf'),
      `[ca]\ndefault_ca = here\n[here]\ndatabase = ${path('index.txt')}\nnew_certs_dir = ${d}\n` +
        `serial = ${path('serial')}\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n`,
    )
    writeFileSync(
      path('ext.cnf'),
      `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n` +
        `extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:${spiffe}\n`,
    )
    openssl(
      [
        'req',
        '-new',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        path('key.pem'),
        '-out',
        path('req.csr'),
      ].concat(['-subj', '/CN=expired']),
    )
    openssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      path('ca.cnf'),
      '-cert',
      path('ca-cert.pem'),
      '-keyfile',
      path('ca-key.pem'),
      '-in',
      path('req.csr'),
      '-out',
      path('cert.pem'),
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200102000000Z',
      '-extfile',
      path('ext.cnf'),
    ])
    return { key: readFileSync(path('key.pem'), 'utf8'), cert: readFileSync(path('cert.pem'), 'utf8') }
  })
}

/** A MESH_INTERNAL service on `port` whose one endpoint is the server sidecar's ingress, running as `account`. */
function meshService(name: string, port: number, account: string): string {
  return istio.serviceEntry({
    name,
    ports: [{ number: port, name: 'http', protocol: 'HTTP' }],
    endpoints: [
      { address: '127.0.0.1', ports: { http: inHttp }, serviceAccount: account } as istio.WorkloadEndpoint,
    ],
    spec: { location: 'MESH_INTERNAL' },
  })
}

interface TlsOutcome {
  readonly text: string
  readonly error: string | undefined
}

/** A TLS client to the server sidecar's STRICT port: writes a GET once secure, reads until the server closes. */
function tlsGet(options: ConnectionOptions): Promise<TlsOutcome> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: inHttp,
      rejectUnauthorized: false,
      ALPNProtocols: ['istio-http/1.1'],
      ...options,
    })
    let text = ''
    let settled = false
    const done = (error?: Error): void => {
      if (settled) return
      settled = true
      socket.destroy()
      resolve({ text, error: error?.message })
    }
    socket.on('secureConnect', () =>
      socket.write('GET /bad HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n'),
    )
    socket.on('data', (d: Buffer) => {
      text += d.toString()
    })
    socket.on('end', () => done())
    socket.on('close', () => done())
    socket.on('error', (e) => done(e))
    setTimeout(() => done(new Error('timed out')), 5_000)
  })
}

/** Opens a TCP connection to `port`, writes `bytes`, and resolves with how long the server took to close it. */
function stall(port: number, bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const socket = netConnect(port, '127.0.0.1', () => socket.write(bytes))
    socket.on('data', () => {})
    socket.on('error', () => {})
    socket.on('close', () => resolve(Date.now() - started))
    setTimeout(
      () => reject(new Error('the server held the stalled connection')),
      HANDSHAKE_TIMEOUT_MS + 10_000,
    )
  })
}

/** The ClientHello a real mesh client sends, captured by a server that never answers it. */
async function captureClientHello(): Promise<Buffer> {
  const catcher = createNetServer()
  await new Promise<void>((r) => catcher.listen(0, '127.0.0.1', r))
  const port = (catcher.address() as { port: number }).port
  try {
    const hello = new Promise<Buffer>((resolve) =>
      catcher.once('connection', (s: Socket) => s.once('data', (d: Buffer) => resolve(d))),
    )
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ALPNProtocols: ['istio-http/1.1'],
      key: sleepCert.key,
      cert: sleepCert.cert,
    })
    socket.on('error', () => {})
    const bytes = await hello
    socket.destroy()
    return bytes
  } finally {
    catcher.close()
  }
}

async function refusals(): Promise<Record<string, number>> {
  const res = await server.admin('/listeners?format=json')
  const listeners = (await res.json()) as { address: string; mtls?: { refused: Record<string, number> } }[]
  return listeners.find((l) => l.address === `127.0.0.1:${inHttp}`)?.mtls?.refused ?? {}
}

/** Waits until the server counted `reason` more than `before` times. */
async function counted(reason: string, before: Record<string, number>): Promise<void> {
  await eventually(async () => ((await refusals())[reason] ?? 0) > (before[reason] ?? 0))
}

function opensslClient(args: readonly string[], input: string): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${inHttp}`, '-alpn', 'istio-http/1.1', '-ign_eof', ...args],
      { timeout: 10_000 },
      (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`),
    )
    child.stdin?.end(input)
  })
}

async function runGoodStream(): Promise<void> {
  while (stream.running) {
    try {
      const viaPair = await send(outReviews, 'reviews', '/good')
      if (viaPair.status === 200) stream.ok++
      else stream.failures.push(`pair: ${viaPair.status} ${viaPair.body}`)
      const direct = await tlsGet({ key: sleepCert.key, cert: sleepCert.cert, ca: ca.cert })
      if (/^HTTP\/1\.1 200/.test(direct.text)) stream.ok++
      else stream.failures.push(`direct: ${direct.error ?? direct.text}`)
    } catch (err) {
      stream.failures.push((err as Error).message)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

beforeAll(async () => {
  ca = testCa('bad-input-root')
  otherCa = testCa('another-root')
  sleepCert = ca.issue('sleep', [`URI:${SLEEP}`])
  dir = await mkdtemp(join(tmpdir(), 'outrigger-bad-input-'))
  writeFileSync(join(dir, 'root-cert.pem'), ca.cert)
  app = await startUpstream('reviews')
  ;[inHttp, outReviews, outRatings] = await freePorts(3)
  server = await startProxy({
    labels: { app: 'reviews' },
    resources: {
      'server.yaml': istio.yamlStream(
        istio.sidecar({ ingress: [istio.loopbackIngress(inHttp, app.port, 'HTTP', 'http')] }),
        `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
`,
      ),
    },
    extraBootstrap: workloadTls('reviews', ca.issue('reviews', [`URI:${REVIEWS}`])),
  })
  const rule = (host: string): string =>
    istio.destinationRule({ host, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } })
  client = await startProxy({
    labels: { app: 'sleep' },
    resources: {
      'client.yaml': istio.yamlStream(
        istio.sidecar({
          egress: [
            { port: outReviews, protocol: 'HTTP', name: 'reviews' },
            { port: outRatings, protocol: 'HTTP', name: 'ratings' },
          ],
        }),
        meshService('reviews', outReviews, 'reviews'),
        rule('reviews'),
        // The endpoint is the reviews sidecar, but the service says it runs as ratings.
        meshService('ratings', outRatings, 'ratings'),
        rule('ratings'),
      ),
    },
    extraBootstrap: workloadTls('sleep', sleepCert),
  })
  expect((await send(outReviews, 'reviews', '/warm')).status).toBe(200)
  stream.done = runGoodStream()
}, 60_000)

afterAll(async () => {
  stream.running = false
  await stream.done
  await client?.stop()
  await server?.stop()
  await app?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('bad TLS input is refused with its reason and a counter; the good stream is unaffected', () => {
  it('garbage instead of a ClientHello (in a TLS record or not) is closed at once as not TLS, as no STRICT filter chain matches it', async () => {
    const before = await refusals()
    const record = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x80]), randomBytes(128)])
    const noise = Buffer.from('\x00\x01garbage, not a TLS record\r\n\r\n')
    const held = await Promise.all([stall(inHttp, record), stall(inHttp, noise)])
    for (const ms of held) expect(ms).toBeLessThan(HANDSHAKE_TIMEOUT_MS)
    await eventually(async () => ((await refusals()).plaintext ?? 0) >= (before.plaintext ?? 0) + 2)
    expect(server.stderr()).toMatch(/refused by PeerAuthentication: plaintext: STRICT \(default\/default\)/)
  })

  it('an expired client certificate of the mesh root: untrusted, CERT_HAS_EXPIRED in the log', async () => {
    const before = await refusals()
    const expired = expiredCert(ca, SLEEP)
    const outcome = await tlsGet({ key: expired.key, cert: expired.cert })
    expect(outcome.text).toBe('')
    await counted('untrusted_client_certificate', before)
    expect(server.stderr()).toMatch(
      /refused by PeerAuthentication: untrusted_client_certificate: .*(CERT_HAS_EXPIRED|certificate has expired)/,
    )
  })

  it('a certificate from another root with the right SPIFFE ID: untrusted, the chain error in the log', async () => {
    const before = await refusals()
    const stranger = otherCa.issue('sleep', [`URI:${SLEEP}`])
    const outcome = await tlsGet({ key: stranger.key, cert: stranger.cert })
    expect(outcome.text).toBe('')
    await counted('untrusted_client_certificate', before)
    expect(server.stderr()).toMatch(
      /refused by PeerAuthentication: untrusted_client_certificate: .*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify|unable to get local issuer)/i,
    )
  })

  it("a server whose SPIFFE ID is not the endpoint's service account: the client sidecar refuses it (503 UF), logs and counts it", async () => {
    const reply = await send(outRatings, 'ratings', '/')
    expect(reply.status).toBe(503)
    expect(reply.body).toContain('CERTIFICATE_VERIFY_FAILED')
    expect(client.stderr()).toMatch(
      new RegExp(
        `upstream TLS \\(ISTIO_MUTUAL\\) to 127\\.0\\.0\\.1:${inHttp} refused: ERR_TLS_CERT_ALTNAME_INVALID`,
      ),
    )
    const res = await client.admin('/clusters?format=json')
    const clusters = (await res.json()) as {
      cluster_statuses: { name: string; host_statuses: { stats: { cx_connect_fail: number } }[] }[]
    }
    const ratings = clusters.cluster_statuses.find((c) => c.name.includes('ratings'))
    expect(ratings?.host_statuses[0].stats.cx_connect_fail).toBeGreaterThan(0)
    // The same endpoint under its true identity still answers.
    expect((await send(outReviews, 'reviews', '/')).status).toBe(200)
  })

  it('TLS 1.2 with only CBC suites, or TLS 1.1, is refused: forward-secret AEAD suites only (Envoy defaults)', async () => {
    const before = await refusals()
    const cbc = await tlsGet({
      key: sleepCert.key,
      cert: sleepCert.cert,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA',
    })
    expect(cbc.text).toBe('')
    expect(cbc.error).toMatch(/handshake failure|no shared cipher|alert/i)
    await counted('handshake_failed', before)
    expect(server.stderr()).toMatch(
      /refused by PeerAuthentication: handshake_failed: .*no (shared cipher|suitable)/i,
    )
    const aead = await tlsGet({
      key: sleepCert.key,
      cert: sleepCert.cert,
      ca: ca.cert,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
    })
    expect(aead.text).toMatch(/^HTTP\/1\.1 200/)
    const old = await tlsGet({
      key: sleepCert.key,
      cert: sleepCert.cert,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
    })
    expect(old.text).toBe('')
  })

  it('a TLS 1.2 client cannot renegotiate (BoringSSL refuses it; testssl.sh secure_client_renego)', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: inHttp,
      ca: ca.cert,
      key: sleepCert.key,
      cert: sleepCert.cert,
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['istio-http/1.1'],
      checkServerIdentity: () => undefined,
    })
    socket.on('error', () => {})
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve)
      socket.once('error', reject)
    })
    // Without SSL_OP_NO_RENEGOTIATION node's server completes it; with it, the request is refused or ignored.
    const outcome = await new Promise<string>((resolve) => {
      const started = socket.renegotiate({ rejectUnauthorized: false }, (err) =>
        resolve(err === null ? 'renegotiated' : `refused: ${err.message}`),
      )
      if (!started) resolve('refused locally')
      setTimeout(() => resolve('no answer'), 2_000)
    })
    socket.destroy()
    expect(outcome).not.toBe('renegotiated')
  })

  it('openssl s_client without a client certificate is refused by the STRICT port; with one it is served', async () => {
    const before = await refusals()
    const request = 'GET /openssl HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n'
    const anonymous = await opensslClient([], request)
    expect(anonymous).toContain('CONNECTED')
    expect(anonymous).not.toMatch(/HTTP\/1\.1 200/)
    await counted('no_client_certificate', before)
    expect(server.stderr()).toMatch(/refused by PeerAuthentication: no_client_certificate/)
    writeFileSync(join(dir, 'sleep-key.pem'), sleepCert.key)
    writeFileSync(join(dir, 'sleep-chain.pem'), sleepCert.cert)
    const mesh = await opensslClient(
      [
        '-cert',
        join(dir, 'sleep-chain.pem'),
        '-key',
        join(dir, 'sleep-key.pem'),
        '-CAfile',
        join(dir, 'root-cert.pem'),
      ],
      request,
    )
    expect(mesh).toMatch(/HTTP\/1\.1 200/)
  })

  it(`a handshake that never completes is closed after ${HANDSHAKE_TIMEOUT_MS} ms (Envoy's listener_filters_timeout)`, async () => {
    const before = await refusals()
    const hello = await captureClientHello()
    // Half a record header, then silence; a whole ClientHello, then silence.
    const [partial, whole] = await Promise.all([
      stall(inHttp, Buffer.from([0x16, 0x03])),
      stall(inHttp, hello),
    ])
    for (const held of [partial, whole]) {
      expect(held).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 100)
      expect(held).toBeLessThan(HANDSHAKE_TIMEOUT_MS + 5_000)
    }
    await eventually(
      async () => ((await refusals()).handshake_timeout ?? 0) >= (before.handshake_timeout ?? 0) + 2,
    )
    expect(server.stderr()).toMatch(
      /refused by PeerAuthentication: handshake_timeout: no ClientHello in 15000 ms/,
    )
  }, 40_000)

  it('a client certificate with an empty subject (as `outrigger ca issue` and Istio make them) is served, Subject="" in XFCC', async () => {
    const caDir = join(dir, 'ca')
    const issued = join(dir, 'issued')
    mkdirSync(caDir, { recursive: true })
    writeFileSync(join(caDir, 'ca-cert.pem'), ca.cert)
    writeFileSync(join(caDir, 'ca-key.pem'), ca.key)
    writeFileSync(join(caDir, 'root-cert.pem'), ca.cert)
    execFileSync(process.execPath, [
      mainScript,
      'ca',
      'issue',
      '--ca',
      caDir,
      '--spiffe',
      SLEEP,
      '--out',
      issued,
    ])
    const key = readFileSync(join(issued, 'key.pem'), 'utf8')
    const cert = readFileSync(join(issued, 'cert-chain.pem'), 'utf8')
    const outcome = await tlsGet({ key, cert, ca: ca.cert })
    expect(outcome.text).toMatch(/^HTTP\/1\.1 200/)
    expect(outcome.text).toContain(`Subject=\\"\\";URI=${SLEEP}`)
  })

  it('the good stream saw no failure through all of it', async () => {
    stream.running = false
    await stream.done
    expect(stream.failures).toEqual([])
    expect(stream.ok).toBeGreaterThan(20)
  })
})
