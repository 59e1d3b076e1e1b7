// haproxy in front of the HTTP/2 and gRPC cases' upstreams: one thread, h2c on both sides (`proto h2`), streams multiplexed upstream.

import { join } from 'node:path'
import { freePorts } from '../support/ports.ts'
import { toolVersion } from '../support/tools.ts'
import { HAPROXY_COMMON, startHaproxy } from './haproxy.ts'
import { type ProtocolPorts, type ProtocolProxy, waitH2 } from './protocol-proxy.ts'

export async function startHaproxyH2(
  haproxy: string,
  workDir: string,
  upstreams: ProtocolPorts,
): Promise<ProtocolProxy> {
  const [h2, grpc] = await freePorts(2)
  // `proto h2` on a bind without TLS: h2c with prior knowledge; on a server: h2c to the upstream,
  // where `http-reuse always` lets streams of any client share one upstream connection.
  const conf = `${HAPROXY_COMMON}
frontend h2
  bind 127.0.0.1:${h2} proto h2
  default_backend h2_upstream

backend h2_upstream
  server up 127.0.0.1:${upstreams.h2} proto h2

frontend grpc
  bind 127.0.0.1:${grpc} proto h2
  default_backend grpc_upstream

backend grpc_upstream
  server up 127.0.0.1:${upstreams.grpc} proto h2
`
  const child = await startHaproxy('haproxy h2', haproxy, join(workDir, 'haproxy-h2'), conf)
  try {
    await waitH2(h2, 10_000, () => child.output(), child.exited)
  } catch (err) {
    await child.stop()
    throw err
  }
  const version = toolVersion(haproxy, '-v').split(' ')[2] ?? 'unknown'
  return {
    name: 'haproxy',
    ports: { h2, grpc },
    pids: [child.pid],
    detail:
      `haproxy (${version}, nbthread 1) takes h2c on \`bind … proto h2\` and forwards h2c with \`server … proto h2\`, ` +
      '`http-reuse always`: streams multiplexed over one upstream connection',
    stop: () => child.stop(),
  }
}
