// The drain on SIGTERM as Istio's agent runs it (pkg/envoy/agent.go, terminate): inbound drains, outbound serves on, until the drain duration ends or, with EXIT_ON_ZERO_ACTIVE_CONNECTIONS, no connection is active.

import type { ListenerManager } from '../listener/listener-manager.ts'
import { log } from '../telemetry/log.ts'

/** How the drain ends: the bootstrap's terminationDrainDuration, exitOnZeroActiveConnections and minimumDrainDuration. */
export interface TerminationDrainPolicy {
  readonly drainMs: number
  readonly exitOnZeroActiveConnections: boolean
  readonly minimumDrainMs: number
  /** How often the active connections are counted (Istio's activeConnectionCheckDelay, 1 s). */
  readonly checkEveryMs: number
}

/** Istio's activeConnectionCheckDelay. */
export const ACTIVE_CONNECTION_CHECK_MS = 1_000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs the drain and resolves when the proxy may exit (the caller then closes what is left open).
 * Inbound listeners stop accepting and finish their in-flight requests (Envoy's
 * `drain_listeners?inboundonly`, which the agent asks for first); outbound listeners keep serving the
 * app's own calls, new connections included, while the app shuts down. Then:
 * - by default, the agent sleeps terminationDrainDuration: inbound requests still running at its end
 *   are cut, and so is every outbound connection. With no outbound listener nothing needs the rest of
 *   the time once inbound has finished, so the drain ends there (Istio always sleeps it out);
 * - with exitOnZeroActiveConnections, the agent sleeps minimumDrainDuration, then counts the active
 *   downstream connections each second and ends at the first count of zero; inbound requests are not cut,
 *   and no upper bound applies but the kubelet's terminationGracePeriodSeconds (Istio's comment: "exit
 *   after min(all connections close, terminationGracePeriodSeconds-minimumDrainDuration)").
 */
export async function drainForTermination(
  listeners: ListenerManager,
  policy: TerminationDrainPolicy,
): Promise<void> {
  if (!policy.exitOnZeroActiveConnections) {
    const inbound = listeners.drainInbound(policy.drainMs)
    if (!listeners.hasOutbound) return inbound
    log.info(`outbound listeners serve on for the drain duration (${policy.drainMs} ms)`)
    await Promise.all([inbound, sleep(policy.drainMs)])
    return
  }
  void listeners.drainInbound(undefined)
  log.info(`draining for ${policy.minimumDrainMs} ms, then waiting for active connections to terminate`)
  await sleep(policy.minimumDrainMs)
  for (;;) {
    const active = listeners.activeConnections
    if (active === 0) {
      log.info('there are no more active connections: exiting')
      return
    }
    log.info(`there are still ${active} active connections`)
    await sleep(policy.checkEveryMs)
  }
}
