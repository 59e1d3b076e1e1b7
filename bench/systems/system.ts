// What every system under test provides: a way to start it in front of the shared upstream, a port to load, and its pids.

export interface Target {
  readonly port: number
  /** The Host header to send (egress listeners route by it); undefined keeps 127.0.0.1:<port>. */
  readonly host?: string
}

export interface RunningSystem {
  readonly name: string
  readonly target: Target
  /** Root pids of the proxy's processes (CPU and RSS are summed over their trees); empty for the direct path. */
  readonly pids: readonly number[]
  /** One line describing what actually runs (versions, flavour). */
  readonly detail: string
  stop(): Promise<void>
}

export interface SystemContext {
  /** The one upstream every system forwards to. */
  readonly upstreamPort: number
  /** The upstream's master process (its tree is pinned with the load generator when systems share a core). */
  readonly upstreamPid: number
  /** A scratch directory that is removed at the end of the run. */
  readonly workDir: string
}

export interface SystemDef {
  readonly name: string
  /** Short human label for tables and charts. */
  readonly label: string
  start(ctx: SystemContext): Promise<RunningSystem>
}
