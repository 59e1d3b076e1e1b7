// prom-client's registry and metric classes, required from their own files: its index also loads node:cluster (with child_process and dgram), its default metrics and @opentelemetry/api, about 2 MiB resident the proxy never uses.

import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'

const requirePromClient = createRequire(import.meta.url)

export const Registry: typeof PromClient.Registry = requirePromClient('prom-client/lib/registry.js')
export type Registry = PromClient.Registry
export const Counter: typeof PromClient.Counter = requirePromClient('prom-client/lib/counter.js')
export type Counter<T extends string = string> = PromClient.Counter<T>
export const Gauge: typeof PromClient.Gauge = requirePromClient('prom-client/lib/gauge.js')
export type Gauge<T extends string = string> = PromClient.Gauge<T>
export const Histogram: typeof PromClient.Histogram = requirePromClient('prom-client/lib/histogram.js')
export type Histogram<T extends string = string> = PromClient.Histogram<T>
