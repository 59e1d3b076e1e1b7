// The direct path: the load generator talks to the upstream itself, no proxy; the physical limit of this machine.

import type { SystemDef } from './system.ts'

export const direct: SystemDef = {
  name: 'direct',
  label: 'direct (no proxy)',
  async start(ctx) {
    return {
      name: 'direct',
      target: { port: ctx.upstreamPort },
      pids: [],
      detail: 'client → upstream',
      stop: async () => {},
    }
  },
}
