// haproxy in HTTP mode: one thread, keep-alive on both sides with connection reuse, no logging.

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Child, startChild } from '../support/children.ts'
import { waitHttp } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import { toolVersion } from '../support/tools.ts'
import type { SystemDef } from './system.ts'

/** The global and defaults sections every bench haproxy shares: one thread, long timeouts, connection reuse. */
export const HAPROXY_COMMON = `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  option http-keep-alive
  http-reuse always
`

/** Writes `conf` as `dir`/haproxy.cfg and starts haproxy on it in the foreground. */
export async function startHaproxy(
  label: string,
  haproxy: string,
  dir: string,
  conf: string,
): Promise<Child> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'haproxy.cfg'), conf)
  // -db: stay in the foreground, one process (no master-worker), so its pid is the proxy.
  return startChild(label, haproxy, ['-f', join(dir, 'haproxy.cfg'), '-db'])
}

export function haproxySystem(haproxy: string): SystemDef {
  return {
    name: 'haproxy',
    label: 'haproxy (1 thread)',
    async start(ctx) {
      const [port] = await freePorts(1)
      const conf = `${HAPROXY_COMMON}
frontend bench
  bind 127.0.0.1:${port}
  default_backend upstream

backend upstream
  server up 127.0.0.1:${ctx.upstreamPort}
`
      const child = await startHaproxy('haproxy', haproxy, join(ctx.workDir, 'haproxy'), conf)
      await waitHttp(port, '/1k', 10_000, () => child.output(), child.exited)
      return {
        name: 'haproxy',
        target: { port },
        pids: [child.pid],
        detail: `${toolVersion(haproxy, '-v')}, nbthread 1, http-reuse always`,
        stop: () => child.stop(),
      }
    },
  }
}
