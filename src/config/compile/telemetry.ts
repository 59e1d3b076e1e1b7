// The TelemetryPolicy of this workload: the bootstrap's `telemetry` block as Istio's mesh default, overridden by the Telemetry resources that apply, merged as pilot/pkg/model/telemetry.go merges them.

import type { Bootstrap } from '../../bootstrap/schema.ts'
import { parseAccessLogFilter } from '../../telemetry/access-log-filter.ts'
import {
  type AccessLogFilter,
  type AccessLogPolicy,
  type CustomTag,
  type DirectionTelemetry,
  type IstioMetric,
  istioMetrics,
  type MetricPolicy,
  meshTelemetryPolicy,
  type TagOverride,
  type TelemetryPolicy,
  type TracingPolicy,
} from '../../telemetry/telemetry-policy.ts'
import type { WorkloadMode } from '../istio/telemetry.ts'
import type { ConfigMessage } from '../messages.ts'
import type { NodeIdentity } from '../model.ts'
import type { Resource, SpecPath, TelemetryResource } from '../resource.ts'

/** The metrics provider Outrigger builds: Istio's default `prometheus` (MeshConfig defaultProviders.metrics). */
export const METRICS_PROVIDER = 'prometheus'
/** Istio's built-in file access-log provider; it writes where the bootstrap's accessLog says (else /dev/stdout, TEXT). */
export const ACCESS_LOG_PROVIDER = 'envoy'
/** The name of the one tracing provider: the bootstrap's telemetry.tracing OTLP endpoint. */
export const TRACING_PROVIDER = 'opentelemetry'

type Direction = 'inbound' | 'outbound'
/** Istio's WorkloadMode of each direction: inbound traffic is SERVER, outbound CLIENT. */
const MODE_OF: Readonly<Record<Direction, 'SERVER' | 'CLIENT'>> = { inbound: 'SERVER', outbound: 'CLIENT' }
const DIRECTIONS: readonly Direction[] = ['inbound', 'outbound']

function appliesTo(mode: WorkloadMode | undefined, direction: Direction): boolean {
  return mode === undefined || mode === 'CLIENT_AND_SERVER' || mode === MODE_OF[direction]
}

function providerNames(providers: readonly { name: string }[]): string[] {
  // pilot's fetchProvider compares names case-insensitively.
  return providers.map((p) => p.name.toLowerCase())
}

/** Warnings, each once (a rule read for both directions warns once). */
class Warnings {
  readonly #out: ConfigMessage[]
  readonly #seen = new Set<string>()
  constructor(out: ConfigMessage[]) {
    this.#out = out
  }
  add(r: TelemetryResource, path: SpecPath, message: string): void {
    const line = path.length === 0 ? r.source.line : r.lineOf(path)
    const key = `${r.source.file}:${line}:${message}`
    if (this.#seen.has(key)) return
    this.#seen.add(key)
    this.#out.push({ severity: 'warning', file: r.source.file, line, message })
  }
}

function nameOf(r: TelemetryResource): string {
  return `${r.namespace}/${r.name}`
}

function isTargeted(r: TelemetryResource): boolean {
  return r.spec.targetRef !== undefined || (r.spec.targetRefs ?? []).length > 0
}

function selectorLabels(r: TelemetryResource): Readonly<Record<string, string>> {
  return r.spec.selector?.matchLabels ?? {}
}

/**
 * The Telemetry resources that apply to this workload, least specific first (pilot's applicableTelemetries):
 * the root namespace's one without selector (mesh-wide), the workload namespace's one without selector, then
 * every one in the workload's namespace whose selector matches its labels. Istio orders resources by
 * creationTimestamp, then name; files have no timestamp, so the name decides, and of several selector-less
 * ones in a namespace the first wins.
 */
function applicableTelemetries(
  resources: readonly Resource[],
  node: NodeIdentity,
  rootNamespace: string,
  warnings: Warnings,
): TelemetryResource[] {
  const telemetries = resources
    .filter((r): r is TelemetryResource => r.kind === 'Telemetry')
    .sort((a, b) => (a.name === b.name ? compare(a.namespace, b.namespace) : compare(a.name, b.name)))
  const namespaceWide = (namespace: string): TelemetryResource | undefined => {
    let winner: TelemetryResource | undefined
    for (const r of telemetries) {
      if (r.namespace !== namespace || isTargeted(r) || Object.keys(selectorLabels(r)).length > 0) continue
      if (winner === undefined) winner = r
      else
        warnings.add(
          r,
          [],
          `Telemetry ${nameOf(r)} is ignored: ${nameOf(winner)} is already the ${namespace === rootNamespace ? 'mesh' : 'namespace'}-wide Telemetry (only one without a selector is valid per namespace; the oldest wins, and without creationTimestamp the first by name)`,
        )
    }
    return winner
  }
  const applied: TelemetryResource[] = []
  const mesh = namespaceWide(rootNamespace)
  if (mesh !== undefined) applied.push(mesh)
  if (node.namespace !== rootNamespace) {
    const namespace = namespaceWide(node.namespace)
    if (namespace !== undefined) applied.push(namespace)
  }
  const selecting: TelemetryResource[] = []
  for (const r of telemetries) {
    if (r.namespace !== node.namespace && r.namespace !== rootNamespace) continue
    if (isTargeted(r)) {
      warnings.add(
        r,
        [r.spec.targetRef === undefined ? 'targetRefs' : 'targetRef'],
        `Telemetry ${nameOf(r)} is ignored: targetRef(s) attach it to gateways and waypoints, not to a sidecar (use selector)`,
      )
      continue
    }
    const labels = selectorLabels(r)
    if (r.namespace !== node.namespace || Object.keys(labels).length === 0) continue
    if (Object.entries(labels).every(([k, v]) => node.labels[k] === v)) selecting.push(r)
  }
  if (selecting.length > 1) {
    for (const r of selecting.slice(1))
      warnings.add(
        r,
        ['selector'],
        `Telemetry ${nameOf(r)} selects workload ${node.workload} as ${nameOf(selecting[0])} does (only one selecting a workload is valid): all of them apply, in name order`,
      )
  }
  return applied.concat(selecting)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The per-metric state an override list builds (pilot's mergeMetrics metricOverride). */
interface MetricOverrideState {
  disabled: boolean | undefined
  readonly tags: Map<string, TagOverride>
}

/**
 * pilot's mergeMetrics for the prometheus provider: overrides apply in order (mesh, namespace, workload) on
 * top of each other; `disabled` is set only where given; tagOverrides accumulate per tag, the later one
 * winning. ALL_METRICS (or no metric) with `disabled: true` turns the whole mode off, and any later override
 * for that mode turns it on again. `providers` on an entry replaces its parent's; only the providers named by
 * the last entry that names any are configured.
 */
function mergeMetrics(
  applied: readonly TelemetryResource[],
  warnings: Warnings,
): Record<Direction, Readonly<Record<IstioMetric, MetricPolicy>>> {
  const entries = applied.flatMap((r) => r.spec.metrics.map((metrics, i) => ({ r, i, metrics })))
  let inScope = [METRICS_PROVIDER]
  for (const { metrics } of entries) {
    const names = providerNames(metrics.providers)
    if (names.length > 0) inScope = names
  }
  const state = {
    inbound: { disabledAll: false, metrics: new Map<IstioMetric, MetricOverrideState>() },
    outbound: { disabledAll: false, metrics: new Map<IstioMetric, MetricOverrideState>() },
  }
  let parent = [METRICS_PROVIDER]
  for (const { r, i, metrics } of entries) {
    const own = providerNames(metrics.providers)
    own.forEach((name, p) => {
      if (name !== METRICS_PROVIDER)
        warnings.add(
          r,
          ['metrics', i, 'providers', p, 'name'],
          `metrics provider '${metrics.providers[p].name}' is not built: only '${METRICS_PROVIDER}' is (its settings are ignored)`,
        )
    })
    const names = own.length > 0 ? own : parent
    parent = names
    if (!names.includes(METRICS_PROVIDER) || !inScope.includes(METRICS_PROVIDER)) continue
    metrics.overrides.forEach((override, o) => {
      const match = override.match
      if (match?.customMetric !== undefined)
        warnings.add(
          r,
          ['metrics', i, 'overrides', o, 'match', 'customMetric'],
          `custom metric '${match.customMetric}' is not built: this override changes no standard metric`,
        )
      const allMetrics =
        match?.customMetric === undefined && (match?.metric ?? 'ALL_METRICS') === 'ALL_METRICS'
      const selected: readonly IstioMetric[] =
        match?.customMetric !== undefined ? [] : allMetrics ? istioMetrics : [match?.metric as IstioMetric]
      for (const direction of DIRECTIONS) {
        if (!appliesTo(match?.mode, direction)) continue
        const mode = state[direction]
        if (allMetrics && override.disabled === true) {
          mode.disabledAll = true
          continue
        }
        // "root namespace disables all, but then enables them by namespace scoped" (mergeMetrics).
        mode.disabledAll = false
        for (const metric of selected) {
          let entry = mode.metrics.get(metric)
          if (entry === undefined) {
            entry = { disabled: undefined, tags: new Map() }
            mode.metrics.set(metric, entry)
          }
          if (override.disabled !== undefined) entry.disabled = override.disabled
          for (const [tag, value] of Object.entries(override.tagOverrides))
            entry.tags.set(tag, { tag, operation: value.operation, value: value.value })
        }
      }
    })
  }
  const prometheus = inScope.includes(METRICS_PROVIDER)
  if (!prometheus) {
    const last = entries.findLast(({ metrics }) => metrics.providers.length > 0)
    if (last !== undefined)
      warnings.add(
        last.r,
        ['metrics', last.i, 'providers'],
        `metrics providers do not include '${METRICS_PROVIDER}': Istio's standard metrics are off for this workload`,
      )
  }
  const result = {} as Record<Direction, Readonly<Record<IstioMetric, MetricPolicy>>>
  for (const direction of DIRECTIONS) {
    const mode = state[direction]
    const policies = {} as Record<IstioMetric, MetricPolicy>
    for (const metric of istioMetrics) {
      const entry = mode.metrics.get(metric)
      policies[metric] =
        !prometheus || mode.disabledAll
          ? DISABLED
          : entry === undefined
            ? ENABLED
            : {
                disabled: entry.disabled ?? false,
                // pilot sorts the tags by name.
                tagOverrides: [...entry.tags.values()].sort((a, b) => compare(a.tag, b.tag)),
              }
    }
    result[direction] = policies
  }
  return result
}

const ENABLED: MetricPolicy = Object.freeze({ disabled: false, tagOverrides: Object.freeze([]) })
const DISABLED: MetricPolicy = Object.freeze({ disabled: true, tagOverrides: Object.freeze([]) })

interface TracingSpec {
  /** The provider's name, or undefined when none is configured (tracing off). */
  provider: string | undefined
  disableSpanReporting: boolean
  samplingPercent: number | undefined
  customTags: readonly CustomTag[] | undefined
}

/**
 * pilot's Telemetries.Tracing: the default provider (here the bootstrap's tracing endpoint, named
 * `opentelemetry`) then each tracing entry in order, for the modes it matches: a named provider replaces the
 * provider (the first name only), and randomSamplingPercentage, disableSpanReporting and customTags (as a
 * whole) replace the parent's when given. No provider: tracing off.
 */
function mergeTracing(
  applied: readonly TelemetryResource[],
  bootstrap: Bootstrap,
  warnings: Warnings,
): Record<Direction, TracingPolicy | undefined> {
  const endpoint = bootstrap.telemetry?.tracing
  const specs: Record<Direction, TracingSpec> = {
    inbound: {
      provider: undefined,
      disableSpanReporting: false,
      samplingPercent: undefined,
      customTags: undefined,
    },
    outbound: {
      provider: undefined,
      disableSpanReporting: false,
      samplingPercent: undefined,
      customTags: undefined,
    },
  }
  if (endpoint !== undefined) for (const d of DIRECTIONS) specs[d].provider = TRACING_PROVIDER
  for (const r of applied) {
    r.spec.tracing.forEach((tracing, i) => {
      if (endpoint === undefined)
        warnings.add(
          r,
          ['tracing', i],
          `tracing is off: the bootstrap has no telemetry.tracing endpoint (the '${TRACING_PROVIDER}' provider)`,
        )
      const names = providerNames(tracing.providers)
      if (names.length > 0 && names[0] !== TRACING_PROVIDER)
        warnings.add(
          r,
          ['tracing', i, 'providers', 0, 'name'],
          `tracing provider '${tracing.providers[0].name}' is not defined: the one tracing provider is '${TRACING_PROVIDER}' (the bootstrap's telemetry.tracing), so tracing is off where this applies`,
        )
      if (names.length > 1)
        warnings.add(
          r,
          ['tracing', i, 'providers', 1],
          'multiple providers is not currently supported: the first one is used',
        )
      for (const direction of DIRECTIONS) {
        if (!appliesTo(tracing.match?.mode, direction)) continue
        const spec = specs[direction]
        if (names.length > 0)
          spec.provider =
            names[0] === TRACING_PROVIDER && endpoint !== undefined ? TRACING_PROVIDER : undefined
        if (tracing.disableSpanReporting !== undefined)
          spec.disableSpanReporting = tracing.disableSpanReporting
        if (tracing.randomSamplingPercentage !== undefined)
          spec.samplingPercent = tracing.randomSamplingPercentage
        if (tracing.customTags !== undefined) spec.customTags = customTagsOf(tracing.customTags)
      }
    })
  }
  const result = {} as Record<Direction, TracingPolicy | undefined>
  for (const direction of DIRECTIONS) {
    const spec = specs[direction]
    result[direction] =
      spec.provider === undefined || endpoint === undefined
        ? undefined
        : {
            otlpEndpoint: endpoint.otlpEndpoint,
            samplingPercent: spec.samplingPercent ?? endpoint.samplingPercent,
            propagation: endpoint.propagation,
            customTags: spec.customTags ?? [],
            disableSpanReporting: spec.disableSpanReporting,
          }
  }
  return result
}

type CustomTagsSpec = NonNullable<TelemetryResource['spec']['tracing'][number]['customTags']>

function customTagsOf(tags: CustomTagsSpec): CustomTag[] {
  const out: CustomTag[] = []
  for (const [tag, value] of Object.entries(tags)) {
    if (value.literal !== undefined) out.push({ tag, kind: 'literal', value: value.literal.value })
    else if (value.environment !== undefined) out.push({ tag, kind: 'environment', ...value.environment })
    else if (value.header !== undefined) out.push({ tag, kind: 'header', ...value.header })
  }
  return out
}

/**
 * The compiled form of an accessLogging filter (the access log's parseAccessLogFilter). The Telemetry parser
 * already rejected an expression it cannot parse, so this one parses.
 */
export function compileAccessLogFilter(expression: string): AccessLogFilter {
  const parsed = parseAccessLogFilter(expression)
  if ('error' in parsed) throw new Error(`access log filter '${expression}': ${parsed.error}`)
  return parsed.filter
}

interface LoggingSpec {
  readonly disabled: boolean
  readonly filter: string | undefined
}

/**
 * pilot's mergeLogs for one mode. The default provider is `envoy` when the bootstrap has an accessLog (it
 * stands for MeshConfig's access log default), none otherwise. Providers in scope are those named by the
 * last level that names any (for this mode); an entry without providers applies to its parent's. `disabled`
 * turns a provider off, and an entry that is not disabled turns it on with the filter of the last entry that
 * named that provider (Istio records filters only for named providers).
 */
function mergeAccessLog(
  applied: readonly TelemetryResource[],
  bootstrap: Bootstrap,
  direction: Direction,
  warnings: Warnings,
): AccessLogPolicy | undefined {
  const mesh = bootstrap.telemetry?.accessLog
  const defaults = mesh === undefined ? [] : [ACCESS_LOG_PROVIDER]
  const levels = applied.filter((r) => r.spec.accessLogging.length > 0)
  const providers = new Map<string, LoggingSpec>()
  if (levels.length === 0) {
    for (const name of defaults) providers.set(name, { disabled: false, filter: undefined })
  } else {
    let inScope = defaults
    const filters = new Map<string, string | undefined>()
    for (const r of levels) {
      const named = new Set<string>()
      r.spec.accessLogging.forEach((logging, i) => {
        const names = providerNames(logging.providers)
        names.forEach((name, p) => {
          if (name !== ACCESS_LOG_PROVIDER)
            warnings.add(
              r,
              ['accessLogging', i, 'providers', p, 'name'],
              `access log provider '${logging.providers[p].name}' is not built: only '${ACCESS_LOG_PROVIDER}' (the bootstrap's accessLog, else /dev/stdout TEXT) is`,
            )
        })
        if (names.length === 0 && logging.filter !== undefined)
          warnings.add(
            r,
            ['accessLogging', i, 'filter'],
            'this filter is not applied: Istio keeps a filter only for the providers its entry names (add providers: [{name: envoy}])',
          )
        if (!appliesTo(logging.match?.mode, direction)) return
        for (const name of names) {
          named.add(name)
          filters.set(name, logging.filter?.expression)
        }
      })
      if (named.size > 0) inScope = [...named]
    }
    let parent = defaults
    for (const r of levels) {
      for (const logging of r.spec.accessLogging) {
        const own = providerNames(logging.providers)
        const names = own.length > 0 ? own : parent
        parent = names
        if (!appliesTo(logging.match?.mode, direction)) continue
        for (const name of names) {
          if (!inScope.includes(name)) continue
          providers.set(
            name,
            logging.disabled === true
              ? { disabled: true, filter: undefined }
              : { disabled: false, filter: filters.get(name) },
          )
        }
      }
    }
  }
  const envoy = providers.get(ACCESS_LOG_PROVIDER)
  if (envoy === undefined || envoy.disabled) return undefined
  return {
    path: mesh?.path ?? '/dev/stdout',
    encoding: mesh?.encoding ?? 'TEXT',
    filter: envoy.filter === undefined ? undefined : compileAccessLogFilter(envoy.filter),
  }
}

/** The workload's TelemetryPolicy; the bootstrap's block alone when no Telemetry resource applies. */
export function compileTelemetry(
  bootstrap: Bootstrap,
  resources: readonly Resource[] = [],
  out: ConfigMessage[] = [],
): TelemetryPolicy {
  const warnings = new Warnings(out)
  const applied = applicableTelemetries(resources, bootstrap.node, bootstrap.rootNamespace, warnings)
  if (applied.length === 0) return meshTelemetryPolicy(bootstrap.telemetry)
  const metrics = mergeMetrics(applied, warnings)
  const tracing = mergeTracing(applied, bootstrap, warnings)
  const direction = (d: Direction): DirectionTelemetry => ({
    metrics: metrics[d],
    accessLog: mergeAccessLog(applied, bootstrap, d, warnings),
    tracing: tracing[d],
  })
  return { inbound: direction('inbound'), outbound: direction('outbound') }
}
