// Picks the Node peer: the candidates (@fastify/http-proxy, http-proxy) are loaded side by side on one core with 1 KiB responses and the faster stays.

import type { NodePeerChoice } from '../report/results.ts'
import { onSharedCore } from '../support/cpu-affinity.ts'
import type { Plan } from '../support/options.ts'
import { median } from '../support/stats.ts'
import { NODE_PEER_FLAVOURS, nodePeerSystem } from '../systems/node-peer.ts'
import type { NodePeerFlavour } from '../systems/node-peer-server.ts'
import type { RunningSystem, SystemContext } from '../systems/system.ts'
import { log } from './interleave.ts'
import { loadTogether } from './side-by-side.ts'

/** Rounds of the pick: loaded at the same moment, so a drift of the machine cannot pick the winner. */
const PICK_ROUNDS = 3

export async function pickNodePeer(
  ctx: SystemContext,
  plan: Plan,
): Promise<{ choice: NodePeerChoice; flavour: NodePeerFlavour }> {
  const running: RunningSystem[] = []
  try {
    for (const flavour of NODE_PEER_FLAVOURS) running.push(await nodePeerSystem(flavour).start(ctx))
    const opts = { path: '/1k', connections: plan.connections, seconds: plan.peerPickSeconds }
    const rounds = await onSharedCore(
      running.flatMap((s) => s.pids),
      [ctx.upstreamPid],
      async (): Promise<number[][]> => {
        await loadTogether(running, { ...opts, seconds: plan.warmupSeconds })
        const samples: number[][] = []
        for (let r = 0; r < PICK_ROUNDS; r++)
          samples.push((await loadTogether(running, opts)).map((s) => s.rps))
        return samples
      },
    )
    const candidates: Record<string, number> = {}
    let best: { flavour: NodePeerFlavour; rps: number } | undefined
    NODE_PEER_FLAVOURS.forEach((flavour, i) => {
      const rps = median(rounds.map((round) => round[i]))
      const label = nodePeerSystem(flavour).label
      candidates[label] = rps
      log(`node peer candidate ${label}: ${Math.round(rps)} req/s (loaded beside the other)`)
      if (best === undefined || rps > best.rps) best = { flavour, rps }
    })
    const flavour = best?.flavour ?? 'fastify'
    return {
      choice: { candidates, chosen: nodePeerSystem(flavour).label, roundsTogether: PICK_ROUNDS },
      flavour,
    }
  } finally {
    for (const system of running) await system.stop()
  }
}
