// The Node floor as a system: shows what any Node proxy pays per request before it does anything useful.

import { join } from 'node:path'
import { startChild } from '../support/children.ts'
import { waitHttp } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import type { SystemDef } from './system.ts'

const server = join(import.meta.dirname, 'node-floor-server.ts')

export const nodeFloor: SystemDef = {
  name: 'node-floor',
  label: 'Node floor (bare undici proxy)',
  async start(ctx) {
    const [port] = await freePorts(1)
    const child = startChild('node floor', process.execPath, [server, String(port), String(ctx.upstreamPort)])
    await waitHttp(port, '/1k', 15_000, () => child.output(), child.exited)
    return {
      name: 'node-floor',
      target: { port },
      pids: [child.pid],
      detail: `node:http server + undici Pool dispatch, no routing or features, node ${process.version}`,
      stop: () => child.stop(),
    }
  },
}
