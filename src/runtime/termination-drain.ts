// The drain on SIGTERM as Istio's agent runs it (pkg/envoy/agent.go, terminate): inbound drains gracefully (accepting on, closing each connection after its response), outbound serves on, until the drain duration ends or, with EXIT_ON_ZERO_ACTIVE_CONNECTIONS, no connection is active.

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
 * Runs the drain and resolves when the proxy may exit (the caller then closes what is left open), as
 * Istio's agent runs it: it asks Envoy for `POST /drain_listeners?inboundonly&graceful`
 * (pkg/envoy/admin.go, DrainListeners), so the inbound listeners enter Envoy's drain period
 * (--drain-time-s = terminationDrainDuration, strategy immediate): they **keep accepting** until it ends
 * while every response closes its connection (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY), so a client
 * whose endpoint removal has not arrived yet is still served; then they stop. Outbound listeners keep
 * serving the app's own calls, new connections included, while the app shuts down. Then:
 * - by default, the agent sleeps terminationDrainDuration and kills the proxy: inbound requests still
 *   running at its end are cut, and so is every outbound connection;
 * - with exitOnZeroActiveConnections, the agent sleeps minimumDrainDuration, then counts the active
 *   downstream connections each second and ends at the first count of zero; inbound requests are not cut,
 *   and no upper bound applies but the kubelet's terminationGracePeriodSeconds (Istio's comment: "exit
 *   after min(all connections close, terminationGracePeriodSeconds-minimumDrainDuration)").
 * With `graceful` false (a fatal error: the process must not take new work) inbound stops accepting at
 * once, and without outbound listeners the drain ends when inbound has finished.
 */
export async function drainForTermination(
  listeners: ListenerManager,
  policy: TerminationDrainPolicy,
  graceful = true,
): Promise<void> {
  const acceptMs = graceful ? policy.drainMs : 0
  if (!policy.exitOnZeroActiveConnections) {
    const inbound = listeners.drainListeners({ acceptMs, cutMs: policy.drainMs }, true)
    if (!graceful && !listeners.hasOutbound) return inbound
    log.info(
      `inbound listeners drain and outbound listeners serve on for the drain duration (${policy.drainMs} ms)`,
    )
    await Promise.all([inbound, sleep(policy.drainMs)])
    return
  }
  void listeners.drainListeners({ acceptMs, cutMs: undefined }, true)
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
