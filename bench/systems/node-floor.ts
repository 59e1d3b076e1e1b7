// The Node floor as a system: shows what any Node proxy pays per request before it does anything useful.

import { join } from 'node:path'
import { startChild } from '../support/children.ts'
import { waitHttp } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import type { SystemDef } from './system.ts'

const server = join(import.meta.dirname, 'node-floor-server.ts')

export const nodeFloor: SystemDef = floorSystem(false)

/**
 * The floor plus the three headers an Envoy sidecar adds to every proxied exchange (x-forwarded-proto
 * and a generated x-request-id upstream, x-envoy-upstream-service-time downstream): the least a Node
 * proxy with Istio's semantics pays; Outrigger ÷ this is the cost of its routing and policy machinery.
 */
export const nodeFloorEnvoy: SystemDef = floorSystem(true)

function floorSystem(envoyHeaders: boolean): SystemDef {
  const name = envoyHeaders ? 'node-floor-envoy' : 'node-floor'
  return {
    name,
    label: envoyHeaders ? 'Node floor + Envoy headers' : 'Node floor (bare Node proxy)',
    async start(ctx) {
      const [port] = await freePorts(1)
      const args = [
        server,
        String(port),
        String(ctx.upstreamPort),
        ...(envoyHeaders ? ['envoy-headers'] : []),
      ]
      const child = startChild(name.replaceAll('-', ' '), process.execPath, args)
      await waitHttp(port, '/1k', 15_000, () => child.output(), child.exited)
      return {
        name,
        target: { port },
        pids: [child.pid],
        detail: `node:http server + undici Pool dispatch, ${
          envoyHeaders
            ? 'x-forwarded-proto, x-request-id and x-envoy-upstream-service-time added'
            : 'no routing or features'
        }, node ${process.version}`,
        stop: () => child.stop(),
      }
    },
  }
}
