// One trigger of an overload action: the action's state (0..1) from a resource's pressure, with recovery hysteresis on a threshold.

import type { OverloadTrigger } from '../protocol/overload.ts'

/**
 * Envoy's ThresholdTriggerImpl and ScaledTriggerImpl (source/server/overload_manager_impl.cc): a threshold
 * trigger is 1 at or above its value and 0 below; a scaled trigger is 0 below `scaling`, 1 at or above
 * `saturation`, and `(pressure - scaling) / (saturation - scaling)` between. Unlike Envoy's, a saturated
 * threshold trigger releases only once pressure falls `recovery` below its value, so a heap that hovers at
 * the line after each collection does not flip the action at every sample.
 */
export class TriggerState {
  readonly #trigger: OverloadTrigger
  readonly #recovery: number
  #saturated = false

  constructor(trigger: OverloadTrigger, recovery: number) {
    this.#trigger = trigger
    this.#recovery = recovery
  }

  /** The lowest pressure at which this trigger may act: a ramp's start, or a threshold less its recovery. */
  get line(): number {
    const t = this.#trigger
    return t.kind === 'scaled' ? t.scaling : t.value - this.#recovery
  }

  /** The action's state under this trigger for a new pressure sample. */
  update(pressure: number): number {
    const t = this.#trigger
    if (t.kind === 'scaled') {
      if (pressure >= t.saturation) return 1
      if (pressure <= t.scaling) return 0
      return (pressure - t.scaling) / (t.saturation - t.scaling)
    }
    this.#saturated = this.#saturated ? pressure >= t.value - this.#recovery : pressure >= t.value
    return this.#saturated ? 1 : 0
  }
}
