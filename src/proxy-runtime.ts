// The running proxy (ProxyRuntime): loads and compiles config, swaps models atomically, and owns listeners and clusters.

import { compileLimits } from './bootstrap/compile-limits.ts'
import { compileOverload } from './bootstrap/compile-overload.ts'
import type { Bootstrap } from './bootstrap/schema.ts'
import { compileModel } from './config/compile.ts'
import { parseDurationMs } from './config/duration.ts'
import { ConfigError, type ConfigMessage, formatMessage } from './config/messages.ts'
import type { ListenerModel, Model } from './config/model.ts'
import { type ConfigReader, readResourcesElsewhere } from './config/read-config.ts'
import { withYoungGenerationHeld } from './config/young-generation.ts'
import type { DnsProxy } from './dns/dns-proxy.ts'
import { startDnsProxy } from './dns/start-dns-proxy.ts'
import { FileWatcher } from './files/file-watcher.ts'
import type { HttpFilter } from './http/filter.ts'
import { AuthorizationFilter } from './http/filters/authorization.ts'
import { CorsFilter } from './http/filters/cors.ts'
import { FaultFilter } from './http/filters/fault.ts'
import { loadJose } from './http/filters/jose-module.ts'
import { JwksCache } from './http/filters/jwks-cache.ts'
import { JwtAuthnFilter } from './http/filters/jwt-authn.ts'
import { LocalRateLimitFilter } from './http/filters/local-rate-limit.ts'
import { PeerMetadataFilter } from './http/filters/peer-metadata.ts'
import { RouteSelectFilter } from './http/filters/route-select.ts'
import { TracingFilter } from './http/filters/tracing.ts'
import { PathNormalizer } from './http/path-normalization.ts'
import { ListenerManager } from './listener/listener-manager.ts'
import type { ProxyState } from './listener/listener-runtime.ts'
import { HeavyHitters } from './live/heavy-hitters.ts'
import type { LiveStats } from './live/live-stats.ts'
import { loadLiveStats } from './live/live-stats-loader.ts'
import { TapHub } from './live/tap-hub.ts'
import { OverloadManager } from './overload/overload-manager.ts'
import { Mirroring } from './router/mirror-request.ts'
import { RouterFilter } from './router/router-filter.ts'
import { collectEnvoyStats, registeredElsewhere } from './runtime/envoy-stats.ts'
import {
  ACTIVE_CONNECTION_CHECK_MS,
  drainForTermination,
  type TerminationDrainPolicy,
} from './runtime/termination-drain.ts'
import { SharedCounters } from './shared/shared-counters.ts'
import { TcpStatsTable } from './tcp/tcp-stats.ts'
import { AccessLog } from './telemetry/access-log.ts'
import { statsPrometheus } from './telemetry/envoy-stats-format.ts'
import { HttpConnectionManagerStats } from './telemetry/http-connection-manager-stats.ts'
import { HttpLimitStats } from './telemetry/http-limit-stats.ts'
import { IstioMetrics } from './telemetry/istio-metrics.ts'
import { log } from './telemetry/log.ts'
import { PeerMetadataExchange } from './telemetry/peer-metadata-exchange.ts'
import { createStatsRegistry } from './telemetry/stats-registry.ts'
import { TracingObserver } from './telemetry/tracing-observer.ts'
import { TrafficObservers } from './telemetry/traffic-observer.ts'
import { localWorkloadMetadata } from './telemetry/workload-metadata.ts'
import { type CertificateSet, certificateSet } from './tls/certificate-details.ts'
import { registerCertificateExpiryGauge } from './tls/certificate-expiry-gauge.ts'
import { MtlsTerminator } from './tls/mtls-terminator.ts'
import { WorkloadIdentity, WorkloadIdentityError, type WorkloadIssuing } from './tls/workload-identity.ts'
import { ClusterManager } from './upstream/cluster-manager.ts'
import { DnsResolver } from './upstream/dns-resolver.ts'

/** An admin `POST /drain_listeners`: its query flags `graceful`, `inboundonly` and `skip_exit`. */
export interface DrainListenersRequest {
  readonly graceful: boolean
  readonly inboundOnly: boolean
  readonly skipExit: boolean
}

export interface ConfigFailure {
  readonly at: string
  readonly messages: readonly ConfigMessage[]
}

export interface RuntimeOptions {
  /** The config reader that read the bootstrap, to read the first resources (then it exits). */
  readonly reader?: ConfigReader
  readonly reusePort?: boolean
  readonly counters?: SharedCounters
  readonly worker?: { readonly index: number; readonly count: number }
}

export class ProxyRuntime implements ProxyState {
  readonly bootstrap: Bootstrap
  readonly clusters: ClusterManager
  /** Counters of the TCP proxy's connections per cluster and endpoint (/clusters). */
  readonly tcpStats = new TcpStatsTable()
  /** Request mirroring's copies in flight (aborted at shutdown). */
  readonly mirroring: Mirroring
  /** The JWT rules' key sets (RequestAuthentication), fetched and refreshed across reloads. */
  readonly jwks: JwksCache
  /** Every listener's connection manager normalizes request paths with this (bootstrap `pathNormalization`). */
  readonly pathNormalizer: PathNormalizer
  /** Header, timeout, connection and HTTP/2 limits (bootstrap `limits`). */
  readonly limits: ProxyState['limits']
  /** The connection managers' limit stats (http.<prefix>.downstream_rq_header_timeout, …). */
  readonly limitStats: HttpLimitStats
  /** This thread's overload manager (bootstrap `overload`): heap and event-loop pressure shed load. */
  readonly overload: OverloadManager
  readonly listeners: ListenerManager
  /** The proxy's Prometheus metrics (admin /stats/prometheus), collected when scraped. */
  readonly stats = createStatsRegistry()
  /** Telemetry sinks told of every request's and TCP connection's end (metrics, access log, tap). */
  readonly observers = new TrafficObservers()
  /** The access log (its files are reopened on SIGUSR1 and flushed at shutdown). */
  readonly accessLog = new AccessLog()
  /**
   * The live view's windowed numbers (`outrigger stat`, admin /live/stat); undefined when bootstrap
   * `live.enabled` is false, and until start() has loaded them.
   */
  live: LiveStats | undefined
  /** This node's peer metadata for its mesh peers, and theirs decoded (HTTP headers, TCP exchange). */
  readonly peerMetadata: PeerMetadataExchange
  /** Spans of sampled requests, exported over OTLP/HTTP; observes only while the model traces. */
  readonly tracing: TracingObserver
  /** The busiest paths of the last minute (`outrigger top`, admin /live/top); undefined when `live.enabled` is false. */
  readonly heavyHitters: HeavyHitters | undefined
  /** The taps on this worker's requests (admin /tap); observes only while one is attached, whatever `live` says. */
  readonly tap: TapHub
  readonly drainMs: number
  /** How a SIGTERM drain ends (terminationDrainDuration, or exitOnZeroActiveConnections after minimumDrainDuration). */
  readonly drainPolicy: TerminationDrainPolicy
  #model: Model | undefined
  #lastError: ConfigFailure | undefined
  #lastRejection: ConfigFailure | undefined
  #resourcesInForce: Readonly<Record<string, number>> = {}
  #reloads = { succeeded: 0, failed: 0 }
  #watcher: FileWatcher
  /** The reader the first compile uses (undefined once used: each reload starts its own). */
  #firstReader: ConfigReader | undefined
  #reloading: Promise<void> | undefined
  #reloadAgain = false
  #stopping = false

  /** False while sibling worker processes are not all ready (set by the supervisor's messages). */
  siblingsReady = true
  /** The table of counters every worker thread shares. */
  readonly counters: SharedCounters
  /** This runtime's worker index and the proxy's worker count (0 of 1 without a supervisor). */
  readonly worker: { readonly index: number; readonly count: number }

  /**
   * `reusePort` lets several worker threads bind the same listener ports (SO_REUSEPORT); `counters` is
   * the table every worker shares (circuit breakers, outlier state, rate limits), created by the main
   * thread, or this runtime's own; `worker` says which worker of how many this runtime is.
   */
  constructor(bootstrap: Bootstrap, options: RuntimeOptions = {}) {
    this.bootstrap = bootstrap
    this.#firstReader = options.reader
    this.drainMs = parseDurationMs(bootstrap.terminationDrainDuration)
    this.drainPolicy = {
      drainMs: this.drainMs,
      exitOnZeroActiveConnections: bootstrap.exitOnZeroActiveConnections,
      minimumDrainMs: parseDurationMs(bootstrap.minimumDrainDuration),
      checkEveryMs: ACTIVE_CONNECTION_CHECK_MS,
    }
    this.peerMetadata = PeerMetadataExchange.forNode(bootstrap.node)
    this.counters = options.counters ?? SharedCounters.create(undefined, false)
    this.worker = options.worker ?? { index: 0, count: 1 }
    this.counters.onFull((key) =>
      log.warning(`the shared counter table is full (at ${key}): further limits hold per worker only`),
    )
    this.limits = compileLimits(bootstrap.limits)
    this.limitStats = new HttpLimitStats(this.counters)
    this.overload = new OverloadManager(compileOverload(bootstrap.overload), this.counters, this.worker.index)
    this.clusters = new ClusterManager(
      new DnsResolver(bootstrap.dns),
      undefined,
      this.counters,
      this.limits.maxResponseHeadersBytes,
    )
    this.mirroring = new Mirroring(this.clusters)
    this.jwks = new JwksCache(parseDurationMs(bootstrap.jwksRefreshInterval))
    this.pathNormalizer = new PathNormalizer(bootstrap.pathNormalization.normalization)
    this.listeners = new ListenerManager(
      this,
      (listener) => this.#filters(listener),
      options.reusePort === true,
      { counters: this.counters, worker: this.worker.index, workers: this.worker.count },
    )
    this.#watcher = new FileWatcher(() => void this.reload())
    this.observers.add(this.accessLog)
    this.tracing = new TracingObserver(this.stats, bootstrap.node)
    registerCertificateExpiryGauge(this.stats, () => this.certificates().certificates)
    // Envoy-style stats: counted in the shared table, written into each scrape (envoy_ names).
    this.observers.add(new HttpConnectionManagerStats(this.counters))
    this.stats.addText(() =>
      statsPrometheus(collectEnvoyStats(this).filter((s) => !registeredElsewhere.has(s.name))),
    )
    // Istio's standard metrics are on by default, as in a sidecar (Telemetry resources can turn them off).
    const istioMetrics = new IstioMetrics(bootstrap.node)
    istioMetrics.register(this.stats)
    this.observers.add(istioMetrics)
    this.heavyHitters = bootstrap.live.enabled ? new HeavyHitters() : undefined
    if (this.heavyHitters !== undefined) this.observers.add(this.heavyHitters)
    this.tap = new TapHub(this.observers, this.worker.index)
  }

  /**
   * The filter chain of a listener, in the order Istio builds a sidecar's HTTP filters (pilot's
   * buildHTTPConnectionManager, pilot/pkg/networking/core/listener_builder.go: authn and authz first, then
   * fault, then CORS, then the router). Path normalization is the connection manager's step before any filter
   * (http/request-start.ts), not one of them; route selection only caches the route (the router answers 404
   * NR). The local rate limit comes first, where Istio's local rate limit task puts it: an EnvoyFilter
   * INSERT_BEFORE with no sub-filter inserts at the head of the list
   * (pilot/pkg/networking/core/envoyfilter/http_filter_patch.go).
   */
  #filters(listener: ListenerModel): readonly HttpFilter[] {
    const filters: HttpFilter[] = [
      // Envoy's connection manager starts the request's span before any filter runs.
      new TracingFilter(),
      new RouteSelectFilter(),
      // Istio's istio.metadata_exchange filter; after route selection, which tells a mesh destination.
      new PeerMetadataFilter(this.peerMetadata, listener.direction),
    ]
    // The local rate limit at the head, where Istio's task inserts it (before authn and authz too).
    const rateLimit = LocalRateLimitFilter.forListener(
      this.bootstrap.rateLimits,
      listener.port,
      this.counters,
    )
    if (rateLimit !== undefined) filters.push(rateLimit)
    // Then Istio's order: JWT authn, then authorization (CUSTOM, DENY, ALLOW as Envoy's ext_authz/RBAC filters sit).
    if (listener.direction === 'inbound')
      filters.push(new JwtAuthnFilter(this.jwks), new AuthorizationFilter())
    filters.push(new FaultFilter(), new CorsFilter(), new RouterFilter(this.clusters, this.mirroring))
    return filters
  }

  get model(): Model {
    if (this.#model === undefined) throw new Error('no model loaded yet')
    return this.#model
  }

  get hasModel(): boolean {
    return this.#model !== undefined
  }

  get lastError(): ConfigFailure | undefined {
    return this.#lastError
  }

  /** The last rejected reload, kept after a later good one (the dashboard shows both); undefined when none was. */
  get lastRejection(): ConfigFailure | undefined {
    return this.#lastRejection
  }

  /** How many Istio resources of each kind the model in force was compiled from. */
  get resourcesInForce(): Readonly<Record<string, number>> {
    return this.#resourcesInForce
  }

  get reloadCounts(): { succeeded: number; failed: number } {
    return { ...this.#reloads }
  }

  /** Ready once a model is loaded and every listener is bound. */
  get ready(): boolean {
    return this.#model !== undefined && !this.#stopping && this.listeners.allBound && this.siblingsReady
  }

  /** The workload certificate (bootstrap `tls`), once start() has read it; undefined without `tls`. */
  identity: WorkloadIdentity | undefined

  /** Inbound mTLS termination with the workload certificate (PeerAuthentication); undefined without `tls`. */
  mtls: MtlsTerminator | undefined

  /** The DNS proxy (bootstrap `listeners.dns`), run by the first worker only; undefined when it does not run. */
  dns: DnsProxy | undefined

  /** Loads and applies the first model; throws a ConfigError when the config or the workload certificate is invalid. */
  async start(): Promise<void> {
    if (this.bootstrap.live.enabled) {
      const workload = localWorkloadMetadata(this.bootstrap.node)
      this.live = await loadLiveStats(`${workload.canonicalService}.${workload.namespace}`)
      this.observers.add(this.live)
    }
    const tls = this.bootstrap.tls
    if (tls !== undefined) {
      try {
        this.identity =
          'ca' in tls ? await WorkloadIdentity.issue(this.#issuing(tls)) : await WorkloadIdentity.load(tls)
        this.clusters.upstreamTls.useIdentity(this.identity)
        this.mtls = new MtlsTerminator(this.identity)
      } catch (error) {
        if (!(error instanceof WorkloadIdentityError)) throw error
        throw new ConfigError([
          { severity: 'error', file: this.bootstrap.file, line: 1, message: error.message },
        ])
      }
    }
    // Bound before the first model, as Istio's agent binds it: until then it answers SERVFAIL.
    if (this.worker.index === 0)
      this.dns = await startDnsProxy(this.bootstrap, () => this.#model?.dnsTable, this.stats)
    await this.#compileAndApply(1)
    this.#watcher.watch(this.bootstrap.resources)
    this.overload.start()
  }

  /** Built-in issuing for this node's identity as Istio names it: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>. */
  #issuing(tls: { readonly ca: string; readonly ttl: string }): WorkloadIssuing {
    const { trustDomain, namespace, serviceAccount } = this.bootstrap.node
    const spiffeId = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`
    return { caDirectory: tls.ca, spiffeId, ttlMs: parseDurationMs(tls.ttl) }
  }

  /**
   * Admin /certs in Envoy's shape: the workload certificate, then each Sidecar ingress TLS listener's
   * certificate and client CA (as its model was compiled).
   */
  certificates(now = Date.now()): { certificates: CertificateSet[] } {
    const sets: CertificateSet[] = []
    if (this.identity !== undefined) sets.push(this.identity.certificates(now))
    for (const { model } of this.listeners.listeners) {
      const tls = model.tls
      if (tls === undefined) continue
      const ca = tls.files.caCertificates
      sets.push(
        certificateSet(
          ca === undefined ? undefined : { pem: tls.credentials.ca, path: ca },
          { pem: tls.credentials.cert, path: tls.files.serverCertificate },
          now,
        ),
      )
    }
    return { certificates: sets }
  }

  /** Recompiles from disk; a bad config is logged and kept in `lastError`, the old model keeps serving. */
  reload(): Promise<void> {
    if (this.#reloading !== undefined) {
      this.#reloadAgain = true
      return this.#reloading
    }
    this.#reloading = (async () => {
      do {
        this.#reloadAgain = false
        await this.#reloadOnce()
      } while (this.#reloadAgain && !this.#stopping)
      this.#reloading = undefined
    })()
    return this.#reloading
  }

  async #reloadOnce(): Promise<void> {
    if (this.#stopping) return
    try {
      const model = await this.#compileAndApply((this.#model?.version ?? 0) + 1)
      this.#lastError = undefined
      this.#reloads.succeeded++
      log.info(`config reloaded: model version ${model.version}`)
    } catch (err) {
      const messages =
        err instanceof ConfigError
          ? err.messages
          : [{ severity: 'error' as const, file: '-', line: 0, message: (err as Error).message }]
      this.#lastError = { at: new Date().toISOString(), messages }
      this.#lastRejection = this.#lastError
      this.#reloads.failed++
      log.error(`config rejected, keeping model version ${this.#model?.version ?? 0}:`)
      for (const m of messages) log.error(`  ${formatMessage(m)}`)
    }
  }

  /** Compiles and applies a model; the young generation is held while they allocate what the model keeps. */
  #compileAndApply(version: number): Promise<Model> {
    return withYoungGenerationHeld(async () => {
      const { model, resourcesByKind } = await this.#compile(version)
      await this.#apply(model)
      this.#resourcesInForce = resourcesByKind
      return model
    })
  }

  async #compile(version: number): Promise<{ model: Model; resourcesByKind: Record<string, number> }> {
    // Read and validated in a short-lived child process (yaml and zod never load here), which stays until
    // it has given the lines of the compiler's messages (config/read-config.ts).
    const reader = this.#firstReader
    this.#firstReader = undefined
    const loaded = await readResourcesElsewhere(
      this.bootstrap.resources,
      this.bootstrap.node.namespace,
      reader,
    )
    let model: Model
    try {
      const errors = loaded.messages.filter((m) => m.severity === 'error')
      if (errors.length > 0) throw new ConfigError(errors)
      try {
        model = compileModel({
          bootstrap: this.bootstrap,
          resources: loaded.resources,
          files: loaded.files,
          warnings: [
            ...(this.bootstrap.warnings ?? []),
            ...loaded.messages.filter((m) => m.severity === 'warning'),
          ],
          version,
        })
      } catch (error) {
        if (error instanceof ConfigError) throw new ConfigError(await loaded.resolveLines(error.messages))
        throw error
      }
      model = { ...model, warnings: await loaded.resolveLines(model.warnings) }
    } finally {
      loaded.close()
    }
    for (const w of model.warnings) log.warning(formatMessage(w))
    const resourcesByKind: Record<string, number> = {}
    for (const { kind } of loaded.resources) resourcesByKind[kind] = (resourcesByKind[kind] ?? 0) + 1
    return { model, resourcesByKind }
  }

  /** Swaps the model in one step: requests already running keep the model they started with. */
  async #apply(model: Model): Promise<void> {
    // DNS clusters answer once they have resolved (Envoy's cluster warming), before the model serves.
    await this.clusters.update(model, this.drainMs)
    // The OpenTelemetry SDK is imported once a model first traces; spans are observed while one does.
    const traced = await this.tracing.prepare(model.telemetry)
    this.observers.remove(this.tracing)
    if (traced) this.observers.add(this.tracing)
    // jose is imported once a model first has a RequestAuthentication (its JWT filter applies), before it serves.
    if (model.requestAuthentication !== undefined) await loadJose()
    this.#model = model
    this.jwks.retain(model.requestAuthentication)
    await this.listeners.reconcile(model.listeners, this.drainMs)
  }

  /**
   * Envoy's admin `POST /drain_listeners` (source/server/admin/listeners_handler.cc): without `graceful`
   * the listeners (the inbound ones with `inboundOnly`) stop accepting at once; with it they enter the
   * drain period (terminationDrainDuration, Envoy's --drain-time-s as Istio sets it), accepting on while
   * every response closes its connection, and stop at its end, or never with `skipExit`. Connections are
   * not cut and the process does not exit; a later call only brings a drain forward, as Envoy ignores a
   * second graceful drain. Readiness is false from now on.
   */
  drainListeners(request: DrainListenersRequest): void {
    const acceptMs = !request.graceful ? 0 : request.skipExit ? Number.POSITIVE_INFINITY : this.drainMs
    void this.listeners.drainListeners({ acceptMs, cutMs: undefined }, request.inboundOnly)
  }

  /**
   * Drains as Istio's agent does on SIGTERM (runtime/termination-drain.ts: inbound accepts on through the
   * drain period and closes each connection after its response, outbound serves on until the drain ends;
   * with `graceful` false, after a fatal error, inbound stops accepting at once), or, with `now` (Envoy's
   * POST /quitquitquit), closes every listener and connection at once; then closes the upstream pools.
   * Readiness is false from the start.
   */
  async shutdown(now = false, graceful = true): Promise<void> {
    if (this.#stopping) return
    this.#stopping = true
    this.#firstReader?.close()
    this.#watcher.close()
    this.identity?.close()
    if (!now) await drainForTermination(this.listeners, this.drainPolicy, graceful)
    await this.listeners.drainAll(0)
    // The app resolves names until its outbound calls end, so the DNS proxy closes after the drain.
    await this.dns?.close()
    // Mirror copies have no client waiting; they must not hold the pools open.
    this.mirroring.abortAll()
    this.jwks.close()
    await this.clusters.close()
    // Every request has ended: its access-log line is queued, and goes out before the process exits.
    await this.accessLog.files.close()
    await this.tracing.shutdown()
    // Watched through the drain: a heap that fills while draining still sheds new requests.
    this.overload.close()
    this.live?.close()
  }
}
