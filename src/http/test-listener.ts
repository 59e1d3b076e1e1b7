// An HttpListener for the http layer's own tests: a bare listener model, the mesh telemetry policy and the given filters.

import type { ListenerModel, Model } from '../config/model.ts'
import { defaultLimits } from '../protocol/limits.ts'
import { notOverloaded, type OverloadState } from '../protocol/overload.ts'
import { RouteTable } from '../route/route-table.ts'
import type { HttpLimitStatName } from '../telemetry/http-limit-stats.ts'
import { meshTelemetryPolicy } from '../telemetry/telemetry-policy.ts'
import { TrafficObservers } from '../telemetry/traffic-observer.ts'
import type { HttpFilter } from './filter.ts'
import type { HttpListener } from './http-listener.ts'
import { type PathNormalizationType, PathNormalizer } from './path-normalization.ts'

export interface TestListenerOptions {
  readonly direction: 'inbound' | 'outbound'
  readonly filters: HttpFilter[]
  readonly countLimit: (stat: HttpLimitStatName) => unknown
  readonly normalization?: PathNormalizationType
  readonly overload?: OverloadState
}

export function testHttpListener(options: TestListenerOptions): HttpListener {
  const model = {
    name: 'test',
    direction: options.direction,
    address: '127.0.0.1',
    port: 0,
    protocol: 'HTTP',
    routeTable: new RouteTable('test', []),
  } as unknown as ListenerModel
  return {
    model,
    proxyModel: { telemetry: meshTelemetryPolicy(undefined) } as Model,
    filters: options.filters,
    scheme: 'http',
    draining: false,
    closesConnections: false,
    overload: options.overload ?? notOverloaded,
    pathNormalizer: new PathNormalizer(options.normalization ?? 'NONE'),
    limits: defaultLimits,
    countLimit: (stat) => void options.countLimit(stat),
    observers: new TrafficObservers(),
  }
}
