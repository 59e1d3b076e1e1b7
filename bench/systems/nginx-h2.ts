// nginx in front of the HTTP/2 and gRPC cases' upstreams: one worker, h2c listeners, grpc_pass (its only HTTP/2 upstream client) to both.
//
// Debian bookworm ships nginx 1.22, where HTTP/2 on a listener is `listen … http2` (`http2 on;` came in
// 1.25.1); without `ssl` that listener takes h2c with prior knowledge, which is what h2load and grpc-js
// send. nginx's proxy_pass speaks only HTTP/1.x upstream and the h2 case's upstream speaks only h2c, so
// the h2 case goes through grpc_pass too: nginx's HTTP/2 upstream client, which forwards any request,
// not only gRPC. It sends one stream per upstream connection (no multiplexing), so a keepalive pool
// holds as many upstream connections as there are streams in flight.

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { freePorts } from '../support/ports.ts'
import { toolVersion } from '../support/tools.ts'
import { type ProtocolPorts, type ProtocolProxy, waitH2 } from './protocol-proxy.ts'
import { nginxHttpCommon, nginxMain, startNginx } from './upstream.ts'

function upstreamBlock(name: string, port: number): string {
  return `  upstream ${name} {
    server 127.0.0.1:${port};
    keepalive 256;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }`
}

function serverBlock(port: number, upstream: string): string {
  return `  server {
    listen 127.0.0.1:${port} http2 backlog=4096;
    location / {
      grpc_pass grpc://${upstream};
    }
  }`
}

export async function startNginxH2(
  nginx: string,
  workDir: string,
  upstreams: ProtocolPorts,
): Promise<ProtocolProxy> {
  const dir = join(workDir, 'nginx-h2')
  await mkdir(dir, { recursive: true })
  const [h2, grpc] = await freePorts(2)
  // keepalive_requests (in nginxHttpCommon) also bounds requests per client HTTP/2 connection since 1.19.7.
  const conf = `${nginxMain(dir)}
http {
${nginxHttpCommon(dir)}
${upstreamBlock('h2_upstream', upstreams.h2)}
${upstreamBlock('grpc_upstream', upstreams.grpc)}
${serverBlock(h2, 'h2_upstream')}
${serverBlock(grpc, 'grpc_upstream')}
}
`
  const child = await startNginx('nginx h2', nginx, dir, conf)
  try {
    await waitH2(h2, 10_000, () => child.output(), child.exited)
  } catch (err) {
    await child.stop()
    throw err
  }
  const version = toolVersion(nginx, '-v').replace('nginx version: ', '')
  return {
    name: 'nginx',
    ports: { h2, grpc },
    pids: [child.pid],
    detail:
      `nginx (${version}, 1 worker) takes h2c on \`listen … http2\` and forwards with \`grpc_pass\` over a keepalive pool: ` +
      'its only HTTP/2 upstream client (proxy_pass speaks HTTP/1.x, which the h2c upstream does not), one stream per upstream connection',
    stop: () => child.stop(),
  }
}
