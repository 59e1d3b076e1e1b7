// One gRPC health check (grpc.health.v1.Health/Check) over node:http2, in plain text: the call a kubelet grpc probe makes.

import { connect } from 'node:http2'
import { connect as netConnect } from 'node:net'

/** grpc.health.v1.HealthCheckResponse.ServingStatus SERVING. */
const SERVING = 1

/** HealthCheckRequest { string service = 1; } as one length-prefixed gRPC message. */
function requestFrame(service: string): Buffer {
  const name = Buffer.from(service)
  // Field 1 (tag 0x0a), its varint length, its bytes; an empty name is the empty message.
  const length = varint(name.length)
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), length, name])
  const frame = Buffer.alloc(5 + message.length)
  frame.writeUInt32BE(message.length, 1)
  message.copy(frame, 5)
  return frame
}

function varint(n: number): Buffer {
  const bytes: number[] = []
  let rest = n
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80)
    rest >>>= 7
  }
  bytes.push(rest)
  return Buffer.from(bytes)
}

/** HealthCheckResponse's `status` (field 1, varint); 0 (UNKNOWN) when absent, as proto3 reads it. */
function servingStatus(message: Buffer): number {
  let at = 0
  while (at < message.length) {
    const tag = message[at++]
    if (tag === 0x08) {
      let value = 0
      let shift = 0
      for (;;) {
        const byte = message[at++]
        value |= (byte & 0x7f) << shift
        if (byte < 0x80) return value
        shift += 7
      }
    }
    return 0
  }
  return 0
}

/**
 * Asks `host:port` for the health of `service` ('' is the whole server). Resolves true only for a
 * SERVING answer with grpc-status 0; false for any other status, a gRPC error (Unimplemented included),
 * a connection failure or no answer within `timeoutMs` (Kubernetes' pkg/probe/grpc, which Istio's status
 * port copies).
 */
export function grpcHealthCheck(
  host: string,
  port: number,
  service: string,
  timeoutMs: number,
  options: { userAgent?: string; localAddress?: string } = {},
): Promise<boolean> {
  return new Promise((resolve) => {
    const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    const session = connect(`http://${authority}`, {
      createConnection: () => netConnect({ host, port, localAddress: options.localAddress }),
    })
    let settled = false
    const finish = (healthy: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      session.destroy()
      resolve(healthy)
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    session.on('error', () => finish(false))
    const stream = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(options.userAgent === undefined ? {} : { 'user-agent': options.userAgent }),
    })
    const chunks: Buffer[] = []
    let grpcStatus: string | undefined
    stream.on('response', (headers) => {
      // A trailers-only answer carries grpc-status in the headers.
      const status = headers['grpc-status']
      if (typeof status === 'string') grpcStatus = status
    })
    stream.on('trailers', (trailers) => {
      const status = trailers['grpc-status']
      if (typeof status === 'string') grpcStatus = status
    })
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('error', () => finish(false))
    stream.on('end', () => {
      const body = Buffer.concat(chunks)
      if (grpcStatus !== '0' || body.length < 5) return finish(false)
      finish(servingStatus(body.subarray(5, 5 + body.readUInt32BE(1))) === SERVING)
    })
    stream.end(requestFrame(service))
  })
}
