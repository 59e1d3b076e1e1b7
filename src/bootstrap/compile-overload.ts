// The bootstrap's `overload`, validated, compiled into the OverloadConfig the overload manager reads (no schema needed here).

import { parseDurationMs } from '../config/duration.ts'
import {
  defaultOverload,
  type OverloadAction,
  type OverloadConfig,
  type OverloadResource,
  type OverloadTrigger,
} from '../protocol/overload.ts'
import type { OverloadSpec, TriggerSpec } from './overload.ts'

function compileTrigger(spec: TriggerSpec): OverloadTrigger {
  return typeof spec === 'number'
    ? { kind: 'threshold', value: spec }
    : { kind: 'scaled', scaling: spec.scaling, saturation: spec.saturation }
}

/** The overload manager's configuration: durations in ms, each action's triggers as given or by default. */
export function compileOverload(spec: OverloadSpec): OverloadConfig {
  const actions = { ...defaultOverload.actions }
  for (const name of Object.keys(actions) as OverloadAction[]) {
    const given = spec.actions[name]
    if (given === undefined) continue
    const triggers: Partial<Record<OverloadResource, OverloadTrigger>> = {}
    if (given.heap !== undefined) triggers.heap = compileTrigger(given.heap)
    if (given.eventLoopDelay !== undefined) triggers.eventLoopDelay = compileTrigger(given.eventLoopDelay)
    actions[name] = triggers
  }
  return {
    enabled: spec.enabled,
    refreshIntervalMs: Math.round(parseDurationMs(spec.refreshInterval)),
    eventLoopDelaySaturationMs: parseDurationMs(spec.eventLoopDelaySaturation),
    recovery: spec.recovery,
    actions,
  }
}
