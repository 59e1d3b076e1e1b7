// nginx as a reverse proxy: one worker, keep-alive upstream connections, no access log, buffers that hold a 64 KiB body.

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { waitHttp } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import { toolVersion } from '../support/tools.ts'
import type { SystemDef } from './system.ts'
import { nginxHttpCommon, nginxMain, startNginx } from './upstream.ts'

export function nginxSystem(nginx: string): SystemDef {
  return {
    name: 'nginx',
    label: 'nginx (1 worker)',
    async start(ctx) {
      const dir = join(ctx.workDir, 'nginx-proxy')
      await mkdir(dir, { recursive: true })
      const [port] = await freePorts(1)
      // proxy_buffers 16×16k: with the default 8×4k a 64 KiB response would spill to a temp file.
      const conf = `${nginxMain(dir)}
http {
${nginxHttpCommon(dir)}
  upstream backend {
    server 127.0.0.1:${ctx.upstreamPort};
    keepalive 256;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k;
      proxy_buffers 16 16k;
    }
  }
}
`
      const child = await startNginx('nginx', nginx, dir, conf)
      await waitHttp(port, '/1k', 10_000, () => child.output(), child.exited)
      return {
        name: 'nginx',
        target: { port },
        pids: [child.pid],
        detail: `${toolVersion(nginx, '-v')}, worker_processes 1, upstream keepalive 256`,
        stop: () => child.stop(),
      }
    },
  }
}
