// The retries case's upstream: one nginx worker on two ports, each answering 503 to a fixed share of requests at random and 1 KiB otherwise.

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { get, waitFor } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import { nginxHttpCommon, nginxMain, startNginx } from './upstream.ts'

export interface FlakyUpstream {
  /** Two endpoints of one service; each fails on its own draw. */
  readonly ports: readonly [number, number]
  readonly pid: number
  stop(): Promise<void>
}

/**
 * `failPercent` of the requests on each port get a 503, chosen by nginx's split_clients over the
 * random $request_id, so failures are independent of the connection, the port and earlier requests.
 */
export async function startFlakyUpstream(
  nginx: string,
  workDir: string,
  failPercent: number,
): Promise<FlakyUpstream> {
  const dir = join(workDir, 'flaky-upstream')
  const www = join(dir, 'www')
  await mkdir(www, { recursive: true })
  await writeFile(join(www, '1k'), Buffer.alloc(1024, 'x'))
  const [a, b] = await freePorts(2)
  const conf = `${nginxMain(dir)}
http {
${nginxHttpCommon(dir)}
  open_file_cache max=16 inactive=600s;
  default_type application/octet-stream;
  split_clients "$request_id" $flaky {
    ${failPercent}% 1;
    * 0;
  }
  server {
    listen 127.0.0.1:${a} backlog=4096;
    listen 127.0.0.1:${b} backlog=4096;
    root ${www};
    location / {
      if ($flaky) { return 503; }
    }
  }
}
`
  const child = await startNginx('flaky upstream nginx', nginx, dir, conf)
  try {
    for (const port of [a, b]) await waitFlaky(port, () => child.output(), child.exited)
  } catch (err) {
    await child.stop()
    throw err
  }
  return { ports: [a, b], pid: child.pid, stop: () => child.stop() }
}

/** Waits until GET /1k on `port` is answered 200 or 503: the flaky upstream, or a proxy in front of it. */
export function waitFlaky(port: number, describe: () => string, exited?: Promise<string>): Promise<void> {
  return waitFor(
    async () => {
      const { status } = await get(port, '/1k', undefined, 500)
      return status === 200 || status === 503
    },
    10_000,
    describe,
    exited,
  )
}
