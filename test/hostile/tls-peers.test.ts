// TLS clients that misbehave on a TLS-terminating ingress listener (garbage, a stalled or aborted handshake, silence): each is counted and closed, nothing is left behind, and a good client is served meanwhile.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { connect, createServer as createNetServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loopbackIngress, sidecar } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { type TestCa, testCa } from '../harness/tls-ca.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'

/** The bootstrap's requestHeadersTimeout here: it bounds a TLS handshake too (docs/limits.md). */
const HEADERS_TIMEOUT_MS = 1_000

let ca: TestCa
let certDir: string
let app: Upstream
let proxy: ProxyProcess
let https: number

beforeAll(async () => {
  ca = testCa('tls-peers-root')
  const server = ca.issue('localhost', ['DNS:localhost'])
  certDir = mkdtempSync(join(tmpdir(), 'outrigger-tls-peers-'))
  writeFileSync(join(certDir, 'cert.pem'), server.cert)
  writeFileSync(join(certDir, 'key.pem'), server.key)
  app = await startUpstream('app')
  ;[https] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({
        ingress: [
          {
            ...loopbackIngress(https, app.port, 'HTTPS', 'https'),
            tls: {
              mode: 'SIMPLE',
              serverCertificate: join(certDir, 'cert.pem'),
              privateKey: join(certDir, 'key.pem'),
            },
          },
        ],
      }),
    },
    extraBootstrap: `concurrency: 1
limits:
  requestHeadersTimeout: ${HEADERS_TIMEOUT_MS / 1000}s
`,
  })
}, 30_000)

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
  rmSync(certDir, { recursive: true, force: true })
})

async function stats(): Promise<Map<string, number>> {
  const text = await (await proxy.admin('/stats')).text()
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(': ')
    if (at > 0) map.set(line.slice(0, at), Number(line.slice(at + 2)))
  }
  return map
}

const listener = (): string => `listener.127.0.0.1_${https}`
const stat = async (name: string): Promise<number> => (await stats()).get(name) ?? -1

interface Snapshot {
  readonly active: number
  readonly resources: Record<string, number>
}

async function snapshot(): Promise<Snapshot> {
  const memory = (await (await proxy.admin('/memory')).json()) as { active_resources: Record<string, number> }
  return { active: await stat(`${listener()}.downstream_cx_active`), resources: memory.active_resources }
}

/** Polls (bounded) until no connection, handle or timer is left above `before`. */
async function settled(before: Snapshot): Promise<void> {
  let last = ''
  try {
    await eventually(async () => {
      const now = await snapshot()
      const grown = Object.entries(now.resources).filter(([kind, n]) => n > (before.resources[kind] ?? 0))
      last = JSON.stringify({ before, now, grown })
      return now.active <= before.active && grown.length === 0
    })
  } catch {
    throw new Error(`not settled: ${last}`)
  }
}

/** A good HTTPS request, on a fresh connection. */
function goodGet(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: https, path, servername: 'localhost', ca: ca.cert, agent: false },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** Connects, writes `bytes` (if any), and resolves with how long the proxy took to close, and what it sent. */
function closedAfter(bytes: Buffer | undefined): Promise<{ ms: number; received: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    let received = 0
    const socket = connect(https, '127.0.0.1', () => {
      if (bytes !== undefined) socket.write(bytes)
    })
    socket.on('data', (d: Buffer) => {
      received += d.length
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve({ ms: performance.now() - started, received }))
    setTimeout(() => reject(new Error('the proxy held the connection')), HEADERS_TIMEOUT_MS * 10)
  })
}

/** The ClientHello a real client sends, captured by a server that never answers. */
async function clientHello(): Promise<Buffer> {
  const catcher = createNetServer()
  await new Promise<void>((r) => catcher.listen(0, '127.0.0.1', r))
  const port = (catcher.address() as { port: number }).port
  try {
    const hello = new Promise<Buffer>((resolve) =>
      catcher.once('connection', (s: Socket) => s.once('data', (d: Buffer) => resolve(d))),
    )
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost' })
    socket.on('error', () => {})
    const bytes = await hello
    socket.destroy()
    return bytes
  } finally {
    catcher.close()
  }
}

describe('misbehaving TLS clients on an ingress TLS listener', () => {
  it('garbage instead of a ClientHello: closed at once, counted as ssl.connection_error', async () => {
    expect(await goodGet('/warm')).toBe(200)
    const before = await snapshot()
    const errors = await stat(`${listener()}.ssl.connection_error`)
    const garbage = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n'), randomBytes(64)])
    const closed = closedAfter(garbage)
    expect(await goodGet('/during-garbage')).toBe(200)
    const { ms } = await closed
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS)
    await eventually(async () => (await stat(`${listener()}.ssl.connection_error`)) === errors + 1)
    expect(app.seen.some((r) => r.url === '/')).toBe(false)
    await settled(before)
  })

  it('a partial ClientHello, then silence: closed by the request-headers timeout, counted', async () => {
    const before = await snapshot()
    const timeouts = await stat(`http.inbound_127.0.0.1_${https}.downstream_rq_header_timeout`)
    const hello = await clientHello()
    const closed = closedAfter(hello.subarray(0, Math.floor(hello.length / 2)))
    expect(await goodGet('/during-partial')).toBe(200)
    const { ms, received } = await closed
    expect(received).toBe(0)
    expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100)
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS * 4)
    expect(await stat(`http.inbound_127.0.0.1_${https}.downstream_rq_header_timeout`)).toBe(timeouts + 1)
    await settled(before)
  })

  it('a TCP connection that never sends a byte: closed by the request-headers timeout, counted', async () => {
    const before = await snapshot()
    const timeouts = await stat(`http.inbound_127.0.0.1_${https}.downstream_rq_header_timeout`)
    const closed = closedAfter(undefined)
    expect(await goodGet('/during-silence')).toBe(200)
    const { ms, received } = await closed
    expect(received).toBe(0)
    expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100)
    expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS * 4)
    expect(await stat(`http.inbound_127.0.0.1_${https}.downstream_rq_header_timeout`)).toBe(timeouts + 1)
    await settled(before)
  })

  it('a client that aborts mid-handshake (after its ClientHello): counted as ssl.connection_error, nothing left', async () => {
    const before = await snapshot()
    const errors = await stat(`${listener()}.ssl.connection_error`)
    const hello = await clientHello()
    const socket = connect(https, '127.0.0.1')
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    socket.write(hello)
    // The ServerHello arrives: the handshake is under way; the client resets it.
    await new Promise<void>((resolve) => socket.once('data', () => resolve()))
    socket.resetAndDestroy()
    expect(await goodGet('/during-abort')).toBe(200)
    await eventually(async () => (await stat(`${listener()}.ssl.connection_error`)) === errors + 1)
    await settled(before)
  })

  it('every good handshake was counted as ssl.handshake', async () => {
    expect(await stat(`${listener()}.ssl.handshake`)).toBe(5)
  })
})
