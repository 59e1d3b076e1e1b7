// The overload manager's compiled configuration (bootstrap `overload`, docs/overload.md) and the state the data path reads from it.

/** What a thread watches: its V8 heap against the heap limit, and its event loop's delay. */
export type OverloadResource = 'heap' | 'eventLoopDelay'

/** The overload actions the proxy takes, named as Envoy's `envoy.overload_actions.*`. */
export type OverloadAction = 'stopAcceptingRequests' | 'rejectIncomingConnections' | 'disableHttpKeepalive'

/**
 * How a resource's pressure (0..1) sets an action (Envoy's config.overload.v3.Trigger): `threshold`
 * saturates the action at or above it; `scaled` is 0 below `scaling`, 1 at or above `saturation`, and
 * the linear ramp between.
 */
export type OverloadTrigger =
  | { readonly kind: 'threshold'; readonly value: number }
  | { readonly kind: 'scaled'; readonly scaling: number; readonly saturation: number }

export interface OverloadConfig {
  /** False: no monitor runs and no action is ever taken. */
  readonly enabled: boolean
  /** How often each thread samples its resources (Envoy's refresh_interval). */
  readonly refreshIntervalMs: number
  /** The mean event-loop delay over one interval that is pressure 1.0. */
  readonly eventLoopDelaySaturationMs: number
  /** A saturated threshold trigger releases only once pressure is this far below its value. */
  readonly recovery: number
  /** Each action's triggers by resource; an action's state is the highest of its triggers'. */
  readonly actions: Readonly<
    Record<OverloadAction, Readonly<Partial<Record<OverloadResource, OverloadTrigger>>>>
  >
}

/**
 * What listeners and the connection manager read: plain fields a thread's overload manager rewrites at
 * each sample, so a request or connection pays one property read.
 */
export interface OverloadState {
  /** The share of new requests answered 503 `envoy overloaded` (0: none, 1: all). */
  readonly stopAcceptingRequests: number
  /** True: a new connection is closed as soon as it is accepted. */
  readonly rejectIncomingConnections: boolean
  /** True: HTTP/1.1 responses carry `connection: close`. */
  readonly disableHttpKeepalive: boolean
}

/** Envoy's names, for stats and logs. */
export const overloadActionNames: Readonly<Record<OverloadAction, string>> = {
  stopAcceptingRequests: 'envoy.overload_actions.stop_accepting_requests',
  rejectIncomingConnections: 'envoy.overload_actions.reject_incoming_connections',
  disableHttpKeepalive: 'envoy.overload_actions.disable_http_keepalive',
}

export const overloadResourceNames: Readonly<Record<OverloadResource, string>> = {
  heap: 'outrigger.resource_monitors.v8_heap',
  eventLoopDelay: 'outrigger.resource_monitors.event_loop_delay',
}

/**
 * The defaults (docs/overload.md says why): keep-alive off at 90 % of the heap limit, new requests 503 at
 * 95 %, new connections closed at 98 %, so a thread sheds load before V8 dies out of memory; and, for a
 * thread whose loop is saturated, a growing share of new requests shed from a mean delay of 500 ms to all
 * of them at 1 s.
 */
export const defaultOverload: OverloadConfig = {
  enabled: true,
  refreshIntervalMs: 250,
  eventLoopDelaySaturationMs: 1_000,
  recovery: 0.02,
  actions: {
    disableHttpKeepalive: { heap: { kind: 'threshold', value: 0.9 } },
    stopAcceptingRequests: {
      heap: { kind: 'threshold', value: 0.95 },
      eventLoopDelay: { kind: 'scaled', scaling: 0.5, saturation: 1 },
    },
    rejectIncomingConnections: { heap: { kind: 'threshold', value: 0.98 } },
  },
}

/** The state of a proxy with no overload manager (validate, tests): never overloaded. */
export const notOverloaded: OverloadState = {
  stopAcceptingRequests: 0,
  rejectIncomingConnections: false,
  disableHttpKeepalive: false,
}
