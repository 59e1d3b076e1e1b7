// The bootstrap's `overload` block (docs/overload.md): sample interval, event-loop saturation and each action's triggers (compile-overload.ts compiles it to OverloadConfig).

import { z } from 'zod'
import { parseDurationMs } from '../config/duration.ts'
import { durationSchema } from '../config/istio/fields.ts'
import { defaultOverload } from '../protocol/overload.ts'

const fraction = z.number().superRefine((n, ctx) => {
  if (!(n >= 0 && n <= 1)) ctx.addIssue({ code: 'custom', message: 'must be a number from 0 to 1' })
})

/** A number is a threshold trigger; `{scaling, saturation}` a scaled one (Envoy's ScaledTrigger). */
const triggerSchema = z.union([
  fraction,
  z.strictObject({ scaling: fraction, saturation: fraction }).superRefine((t, ctx) => {
    if (t.scaling >= t.saturation)
      ctx.addIssue({ code: 'custom', message: 'scaling must be below saturation' })
  }),
])

/** An action's triggers by resource; an action given here replaces its default triggers (`{}`: never taken). */
const actionSchema = z.strictObject({
  heap: triggerSchema.optional(),
  eventLoopDelay: triggerSchema.optional(),
})

export const overloadSchema = z
  .strictObject({
    enabled: z.boolean().default(defaultOverload.enabled),
    refreshInterval: durationSchema.default(`${defaultOverload.refreshIntervalMs}ms`),
    eventLoopDelaySaturation: durationSchema.default(`${defaultOverload.eventLoopDelaySaturationMs}ms`),
    recovery: fraction.default(defaultOverload.recovery),
    actions: z
      .strictObject({
        stopAcceptingRequests: actionSchema.optional(),
        rejectIncomingConnections: actionSchema.optional(),
        disableHttpKeepalive: actionSchema.optional(),
      })
      .prefault({}),
  })
  .prefault({})
  .superRefine((spec, ctx) => {
    if (parseDurationMs(spec.refreshInterval) < 10)
      ctx.addIssue({ code: 'custom', path: ['refreshInterval'], message: 'must be at least 10ms' })
    if (parseDurationMs(spec.eventLoopDelaySaturation) <= 0)
      ctx.addIssue({ code: 'custom', path: ['eventLoopDelaySaturation'], message: 'must be above 0' })
  })

export type OverloadSpec = z.infer<typeof overloadSchema>
export type TriggerSpec = z.infer<typeof triggerSchema>
