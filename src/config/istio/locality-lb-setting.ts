// LocalityLoadBalancerSetting and WarmupConfiguration (istio/api destination_rule.proto), validated as Istio validates them.

import { z } from 'zod'
import { TOPOLOGY_LABELS } from '../locality.ts'
import { addError } from './add-error.ts'
import { durationSchema } from './fields.ts'

/**
 * Istio's validateLocalities: at most one `*`, only at the end; no empty part; no locality that
 * overlaps one before it (`a/*` then `a/b`, or the same locality twice).
 */
function localitiesProblem(localities: readonly string[]): string | undefined {
  const seen = new Map<string, Map<string, Set<string>>>()
  for (const locality of localities) {
    const stars = locality.split('*').length - 1
    if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) {
      return `locality ${locality} wildcard '*' number can not exceed 1 and must be in the end`
    }
    const overlap = `locality ${locality} overlap with previous specified ones`
    if (seen.has('*')) return overlap
    const parts = locality.split('/', 3)
    if (parts.some((p) => p === ''))
      return `locality ${locality} must not contain empty region/zone/subzone info`
    const [region, zone, subzone] = parts
    const zones = seen.get(region)
    if (parts.length === 1) {
      if (zones !== undefined) return overlap
      seen.set(region, new Map([['*', new Set(['*'])]]))
      continue
    }
    if (zones === undefined) {
      seen.set(region, new Map([[zone, new Set([parts.length === 2 ? '*' : subzone])]]))
      continue
    }
    if (zones.has('*')) return overlap
    const subzones = zones.get(zone)
    if (parts.length === 2) {
      if (subzones !== undefined) return overlap
      zones.set(zone, new Set(['*']))
      continue
    }
    if (subzones === undefined) zones.set(zone, new Set([subzone]))
    else if (subzones.has('*') || subzones.has(subzone)) return overlap
    else subzones.add(subzone)
  }
  return undefined
}

const distributeSchema = z.strictObject({
  from: z.string(),
  to: z.record(z.string(), z.number()).default({}),
})

const failoverSchema = z.strictObject({ from: z.string(), to: z.string() })

export const localityLbSettingSchema = z
  .strictObject({
    distribute: z.array(distributeSchema).default([]),
    failover: z.array(failoverSchema).default([]),
    failoverPriority: z.array(z.string()).default([]),
    enabled: z.boolean().optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.distribute.length > 0 && lb.failover.length > 0) {
      addError(ctx, "can not simultaneously specify 'distribute' and 'failover'")
      return
    }
    if (lb.failover.length > 0) {
      for (const label of lb.failoverPriority) {
        const name = label.split('=')[0]
        if (TOPOLOGY_LABELS.includes(name)) {
          addError(
            ctx,
            `can not simultaneously set 'failover' and topology label '${name}' in 'failover_priority'`,
          )
          return
        }
      }
    }
    lb.distribute.forEach((rule, index) => {
      let total = 0
      for (const weight of Object.values(rule.to)) {
        if (!Number.isInteger(weight) || weight < 1 || weight > 100) {
          addError(ctx, 'locality weight must be in range [1, 100]', ['distribute', index, 'to'])
          return
        }
        total += weight
      }
      if (total !== 100) addError(ctx, `total locality weight ${total} != 100`, ['distribute', index, 'to'])
      const problem = localitiesProblem(Object.keys(rule.to))
      if (problem !== undefined) addError(ctx, problem, ['distribute', index, 'to'])
    })
    const fromProblem = localitiesProblem(lb.distribute.map((d) => d.from))
    if (fromProblem !== undefined) addError(ctx, fromProblem, ['distribute'])
    lb.failover.forEach((rule, index) => {
      const path = ['failover', index]
      if (rule.from === rule.to)
        addError(ctx, 'locality lb failover settings must specify different regions', path)
      if (rule.from.includes('/') || rule.to.includes('/'))
        addError(ctx, 'locality lb failover only specify region', path)
      if (rule.from.includes('*') || rule.to.includes('*'))
        addError(ctx, "locality lb failover region should not contain '*' wildcard", path)
    })
  })

export type LocalityLbSetting = z.infer<typeof localityLbSettingSchema>

/** Slow start (Envoy's slow_start_config): `warmup`, or the deprecated `warmupDurationSecs`. */
export const warmupSchema = z.strictObject({
  duration: durationSchema,
  minimumPercent: z
    .number()
    .superRefine((n, ctx) => {
      if (n < 0 || n > 100) addError(ctx, `minimumPercent ${n} is not in range 0..100`)
    })
    .optional(),
  aggression: z
    .number()
    .superRefine((n, ctx) => {
      if (n < 0) addError(ctx, `aggression ${n} must not be negative`)
    })
    .optional(),
})

export type WarmupSettings = z.infer<typeof warmupSchema>
