// The one upstream behind every system: nginx (one worker) serving static 1 KiB and 64 KiB bodies from memory-cached files.
//
// Why nginx and not a Node server: on a 2-core machine the upstream competes with the proxy under test
// and the load generator for CPU. nginx answers a static file for a few microseconds of CPU, a Node
// http server for ~10× that, so with nginx more of the measured time is the proxy's own. Every system,
// including the direct path, talks to this same instance.

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Child, installCleanup, removeAtExit, startChild } from '../support/children.ts'
import { waitHttp } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import { ensureTools } from '../support/tools.ts'

export const BODIES = { '/1k': 1024, '/64k': 64 * 1024 } as const
export type BodyPath = keyof typeof BODIES

export interface Upstream {
  readonly port: number
  readonly pid: number
  stop(): Promise<void>
}

/** nginx directives every bench nginx instance shares: foreground, one worker, files under `dir`. */
export function nginxMain(dir: string): string {
  return `daemon off;
master_process on;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; multi_accept on; }
`
}

/** http{} directives every bench nginx instance shares: no logs, long keep-alive, temp paths in `dir`. */
/** Writes `conf` as `dir`/nginx.conf and starts nginx on it in the foreground (its prefix and error log in `dir`). */
export async function startNginx(label: string, nginx: string, dir: string, conf: string): Promise<Child> {
  await writeFile(join(dir, 'nginx.conf'), conf)
  return startChild(label, nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')])
}

export function nginxHttpCommon(dir: string): string {
  return `  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
`
}

export async function startUpstream(nginx: string, workDir: string): Promise<Upstream> {
  const dir = join(workDir, 'upstream')
  const www = join(dir, 'www')
  await mkdir(www, { recursive: true })
  for (const [path, size] of Object.entries(BODIES))
    await writeFile(join(www, path.slice(1)), Buffer.alloc(size, 'x'))
  const [port] = await freePorts(1)
  const conf = `${nginxMain(dir)}
http {
${nginxHttpCommon(dir)}
  sendfile on;
  tcp_nopush on;
  etag off;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${www};
    location / { }
  }
}
`
  const child = await startNginx('upstream nginx', nginx, dir, conf)
  await waitHttp(port, '/1k', 10_000, () => child.output(), child.exited)
  return { port, pid: child.pid, stop: () => child.stop() }
}

/**
 * What every single-purpose bench script starts with: its processes killed on exit, a scratch
 * directory `outrigger-<name>-…` removed on exit, and the upstream running in it.
 */
export async function startScratchUpstream(name: string): Promise<{ workDir: string; upstream: Upstream }> {
  installCleanup()
  const tools = ensureTools(['nginx'])
  const workDir = await mkdtemp(join(tmpdir(), `outrigger-${name}-`))
  removeAtExit(workDir)
  return { workDir, upstream: await startUpstream(tools.nginx, workDir) }
}
