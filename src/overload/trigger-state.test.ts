// Threshold and scaled triggers as Envoy computes them, and the recovery margin of a saturated threshold.

import { describe, expect, it } from 'vitest'
import { TriggerState } from './trigger-state.ts'

describe('overload trigger state', () => {
  it('a threshold saturates at its value and releases only below value - recovery', () => {
    const t = new TriggerState({ kind: 'threshold', value: 0.9 }, 0.05)
    expect(t.update(0.89)).toBe(0)
    expect(t.update(0.9)).toBe(1)
    // Hovering just under the line after a collection keeps it saturated.
    expect(t.update(0.86)).toBe(1)
    expect(t.update(0.849)).toBe(0)
    expect(t.update(0.87)).toBe(0)
  })

  it('a scaled trigger ramps from scaling to saturation (Envoy ScaledTrigger)', () => {
    const t = new TriggerState({ kind: 'scaled', scaling: 0.5, saturation: 1 }, 0.05)
    expect(t.update(0.4)).toBe(0)
    expect(t.update(0.5)).toBe(0)
    expect(t.update(0.75)).toBeCloseTo(0.5)
    expect(t.update(1)).toBe(1)
    expect(t.update(3)).toBe(1)
    expect(t.update(0.6)).toBeCloseTo(0.2)
  })
})
