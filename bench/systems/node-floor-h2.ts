// The Node floor in front of the HTTP/2 and gRPC cases' upstreams: what any Node proxy pays per stream.

import { join } from 'node:path'
import { startChild } from '../support/children.ts'
import { freePorts } from '../support/ports.ts'
import { type ProtocolPorts, type ProtocolProxy, waitH2 } from './protocol-proxy.ts'

const server = join(import.meta.dirname, 'node-floor-h2-server.ts')

export async function startNodeFloorH2(upstreams: ProtocolPorts): Promise<ProtocolProxy> {
  const [h2, grpc] = await freePorts(2)
  const child = startChild('node floor h2', process.execPath, [
    server,
    String(h2),
    String(upstreams.h2),
    String(grpc),
    String(upstreams.grpc),
  ])
  try {
    await waitH2(h2, 15_000, () => child.output(), child.exited)
  } catch (err) {
    await child.stop()
    throw err
  }
  return {
    name: 'node-floor',
    ports: { h2, grpc },
    pids: [child.pid],
    detail:
      `The Node floor (node ${process.version}) is a node:http2 server whose streams go out on one node:http2 session ` +
      'per upstream, headers, body and trailers forwarded and nothing else (bench/systems/node-floor-h2-server.ts)',
    stop: () => child.stop(),
  }
}
