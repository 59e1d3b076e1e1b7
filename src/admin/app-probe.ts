// Runs one of the app's original kubelet probes for the health port, answering as Istio's status port does (pkg/istio-agent/status/server.go, handleAppProbe).

import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect, isIPv4 } from 'node:net'
import type { AppProber } from '../bootstrap/app-probers.ts'
import { request as httpRequest } from '../protocol/node-http.ts'
import { grpcHealthCheck } from './grpc-health-check.ts'

/** What the health port answers: the status, and for httpGet the app's body (at most 10 KiB, as Istio). */
export interface ProbeAnswer {
  readonly status: number
  readonly body: Buffer
}

/** Istio's maxRespBodyLength. */
const MAX_BODY_BYTES = 10 * 1024
/** Kubernetes and Istio follow at most 10 redirects to the same host. */
const MAX_REDIRECTS = 10
/**
 * The source address of probes to the app (Istio's UpstreamLocalAddressIPv4): the capture rules let
 * 127.0.0.6 through, so a probe is not captured again as inbound traffic.
 */
const PROBE_SOURCE_IPV4 = '127.0.0.6'
/** Where a probe goes when it names no host: this pod (Istio's REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION). */
const DEFAULT_HOST = '127.0.0.1'
/** Headers that describe the kubelet's connection, not the probe. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'te',
  'content-length',
])

const empty = Buffer.alloc(0)

function sourceFor(host: string): string | undefined {
  return isIPv4(host) && host.startsWith('127.') ? PROBE_SOURCE_IPV4 : undefined
}

/**
 * Runs `prober` for the kubelet's request `req` (which arrived on `statusPort`). httpGet: the app's
 * status and body pass through, a redirect to another host is 200, a failure to connect or an answer later
 * than `timeoutSeconds` is 500. tcpSocket: 200 when it connects in time, else 500. grpc: 200 when the
 * health service answers SERVING, else 500.
 */
export async function runAppProbe(
  prober: AppProber,
  req: IncomingMessage,
  statusPort: number,
): Promise<ProbeAnswer> {
  const host = prober.kind === 'grpc' ? DEFAULT_HOST : (prober.host ?? DEFAULT_HOST)
  const localAddress = sourceFor(host)
  switch (prober.kind) {
    case 'tcpSocket':
      return {
        status: (await tcpConnects(host, prober.port, prober.timeoutMs, localAddress)) ? 200 : 500,
        body: empty,
      }
    case 'grpc': {
      const userAgent = req.headers['user-agent']
      const healthy = await grpcHealthCheck(host, prober.port, prober.service, prober.timeoutMs, {
        userAgent,
        localAddress,
      })
      return { status: healthy ? 200 : 500, body: empty }
    }
    case 'httpGet':
      return httpProbe(prober, req, statusPort, host, localAddress)
  }
}

function tcpConnects(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, localAddress })
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** The headers sent to the app: the probe's own httpHeaders, then the kubelet's (Istio forwards them). */
function probeHeaders(
  prober: Extract<AppProber, { kind: 'httpGet' }>,
  req: IncomingMessage,
  statusPort: number,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {}
  for (const { name, value } of prober.httpHeaders) headers[name.toLowerCase()] = value
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase()
    if (!HOP_BY_HOP.has(name)) headers[name] = req.rawHeaders[i + 1]
  }
  // The kubelet addressed the status port: the app sees its own port in Host, as Istio rewrites it.
  const incomingHost = req.headers.host
  if (incomingHost !== undefined && incomingHost === headers.host) {
    const url = URL.canParse(`http://${incomingHost}`) ? new URL(`http://${incomingHost}`) : undefined
    if (url !== undefined && Number(url.port) === statusPort) {
      url.port = String(prober.port)
      headers.host = url.host
    }
  }
  // As the kubelet's probes (and Istio's, by default): no keep-alive.
  headers.connection = 'close'
  return headers
}

async function httpProbe(
  prober: Extract<AppProber, { kind: 'httpGet' }>,
  req: IncomingMessage,
  statusPort: number,
  host: string,
  localAddress: string | undefined,
): Promise<ProbeAnswer> {
  const deadline = Date.now() + prober.timeoutMs
  const path = prober.path.startsWith('/') ? prober.path : `/${prober.path}`
  const scheme = prober.scheme === 'HTTPS' ? 'https' : 'http'
  const authority = host.includes(':') ? `[${host}]:${prober.port}` : `${host}:${prober.port}`
  let url = new URL(`${scheme}://${authority}${path}`)
  const headers = probeHeaders(prober, req, statusPort)
  for (let redirects = 0; ; redirects++) {
    const answer = await httpGet(url, headers, deadline - Date.now(), localAddress)
    if (answer === undefined) return { status: 500, body: empty }
    if (answer.status < 300 || answer.status >= 400) return answer
    // Kubernetes' redirect rule (pkg/probe/http): follow to the same host, up to 10 times; a redirect
    // elsewhere is a success.
    const location = answer.location === undefined ? undefined : URL.parse(answer.location, url.href)
    if (location == null || location.hostname !== url.hostname) return { status: 200, body: empty }
    if (redirects + 1 >= MAX_REDIRECTS) return { status: 500, body: empty }
    url = location
  }
}

/** One GET; undefined when it fails or does not answer within `timeoutMs`. */
function httpGet(
  url: URL,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  localAddress: string | undefined,
): Promise<(ProbeAnswer & { location?: string }) | undefined> {
  return new Promise((resolve) => {
    if (timeoutMs <= 0) return resolve(undefined)
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    // As the kubelet, an HTTPS probe does not verify the app's certificate.
    const outgoing = send(url, {
      method: 'GET',
      headers,
      agent: false,
      localAddress,
      rejectUnauthorized: false,
    })
    const timer = setTimeout(() => {
      outgoing.destroy()
      resolve(undefined)
    }, timeoutMs)
    outgoing.once('error', () => {
      clearTimeout(timer)
      resolve(undefined)
    })
    outgoing.once('response', (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_BODY_BYTES) chunks.push(chunk.subarray(0, MAX_BODY_BYTES - size))
        size += chunk.length
      })
      res.once('error', () => {
        clearTimeout(timer)
        resolve(undefined)
      })
      res.once('end', () => {
        clearTimeout(timer)
        const location = res.headers.location
        resolve({ status: res.statusCode ?? 500, body: Buffer.concat(chunks), location })
      })
    })
    outgoing.end()
  })
}
