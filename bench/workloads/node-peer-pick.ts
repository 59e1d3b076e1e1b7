// Picks the Node peer: each candidate (@fastify/http-proxy, http-proxy) is loaded once with 1 KiB responses and the faster one stays.

import type { NodePeerChoice } from '../report/results.ts'
import type { Plan } from '../support/options.ts'
import { NODE_PEER_FLAVOURS, nodePeerSystem } from '../systems/node-peer.ts'
import type { NodePeerFlavour } from '../systems/node-peer-server.ts'
import type { SystemContext } from '../systems/system.ts'
import { log } from './interleave.ts'
import { runThroughput } from './throughput.ts'

export async function pickNodePeer(
  ctx: SystemContext,
  plan: Plan,
): Promise<{ choice: NodePeerChoice; flavour: NodePeerFlavour }> {
  const candidates: Record<string, number> = {}
  let best: { flavour: NodePeerFlavour; rps: number } | undefined
  for (const flavour of NODE_PEER_FLAVOURS) {
    const def = nodePeerSystem(flavour)
    const system = await def.start(ctx)
    try {
      const opts = { path: '/1k', connections: plan.connections, seconds: plan.peerPickSeconds }
      await runThroughput(system.target, { ...opts, seconds: plan.warmupSeconds })
      const sample = await runThroughput(system.target, opts)
      candidates[def.label] = sample.rps
      log(`node peer candidate ${def.label}: ${Math.round(sample.rps)} req/s`)
      if (best === undefined || sample.rps > best.rps) best = { flavour, rps: sample.rps }
    } finally {
      await system.stop()
    }
  }
  const flavour = best?.flavour ?? 'fastify'
  return { choice: { candidates, chosen: nodePeerSystem(flavour).label }, flavour }
}
