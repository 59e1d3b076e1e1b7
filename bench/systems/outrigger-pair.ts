// Two Outrigger sidecars as in a mesh: client → A's egress listener (routes by Host) → B's ingress listener → upstream.

import { freePorts } from '../support/ports.ts'
import { egressSidecar, ingressSidecar, serviceEntry, startOutrigger } from './outrigger-process.ts'
import type { SystemDef } from './system.ts'

/** The service name the client asks A for (a short name, resolved in A's namespace as Istio does). */
const SERVICE = 'upstream'

export const outriggerPair: SystemDef = {
  name: 'outrigger-pair',
  label: 'Outrigger pair (egress→ingress)',
  async start(ctx) {
    const [egress, ingress] = await freePorts(2)
    const server = await startOutrigger({
      name: 'outrigger-pair-server',
      workDir: ctx.workDir,
      resources: { 'sidecar.yaml': ingressSidecar(ingress, ctx.upstreamPort) },
    })
    try {
      const client = await startOutrigger({
        name: 'outrigger-pair-client',
        workDir: ctx.workDir,
        resources: {
          'sidecar.yaml': egressSidecar(egress),
          'services.yaml': serviceEntry(SERVICE, `${SERVICE}.default.svc.cluster.local`, egress, ingress),
        },
      })
      return {
        name: 'outrigger-pair',
        target: { port: egress, host: SERVICE },
        pids: [client.child.pid, server.child.pid],
        detail:
          'client sidecar egress → server sidecar ingress → upstream; CPU and RSS are both processes summed',
        stop: async () => {
          await client.stop()
          await server.stop()
        },
      }
    } catch (err) {
      await server.stop()
      throw err
    }
  },
}
