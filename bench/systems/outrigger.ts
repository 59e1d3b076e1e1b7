// Outrigger as one sidecar's inbound side: client → Outrigger ingress listener → upstream.

import { freePorts } from '../support/ports.ts'
import { ingressSidecar, startOutrigger } from './outrigger-process.ts'
import type { SystemDef } from './system.ts'

export const outrigger: SystemDef = {
  name: 'outrigger',
  label: 'Outrigger',
  async start(ctx) {
    const [port] = await freePorts(1)
    const proxy = await startOutrigger({
      name: 'outrigger',
      workDir: ctx.workDir,
      resources: { 'sidecar.yaml': ingressSidecar(port, ctx.upstreamPort) },
    })
    return {
      name: 'outrigger',
      target: { port },
      pids: [proxy.child.pid],
      detail: `ingress listener → 127.0.0.1:${ctx.upstreamPort}, node ${process.version}, 1 process`,
      stop: () => proxy.stop(),
    }
  },
}
