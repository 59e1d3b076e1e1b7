// The bootstrap's `overload` block: defaults, units, replaced actions, and what it refuses.

import { describe, expect, it } from 'vitest'
import { defaultOverload } from '../protocol/overload.ts'
import { compileOverload } from './compile-overload.ts'
import { overloadSchema } from './overload.ts'

describe('bootstrap overload', () => {
  it('compiles an absent block to the documented defaults (on)', () => {
    expect(compileOverload(overloadSchema.parse(undefined))).toEqual(defaultOverload)
  })

  it('reads durations as ms; a given action replaces its default triggers, the others stay', () => {
    const config = compileOverload(
      overloadSchema.parse({
        refreshInterval: '50ms',
        eventLoopDelaySaturation: '200ms',
        actions: {
          stopAcceptingRequests: { heap: 0.5 },
          rejectIncomingConnections: { eventLoopDelay: { scaling: 0.2, saturation: 0.4 } },
          disableHttpKeepalive: {},
        },
      }),
    )
    expect(config.refreshIntervalMs).toBe(50)
    expect(config.eventLoopDelaySaturationMs).toBe(200)
    expect(config.actions.stopAcceptingRequests).toEqual({ heap: { kind: 'threshold', value: 0.5 } })
    expect(config.actions.rejectIncomingConnections).toEqual({
      eventLoopDelay: { kind: 'scaled', scaling: 0.2, saturation: 0.4 },
    })
    expect(config.actions.disableHttpKeepalive).toEqual({})
    expect(compileOverload(overloadSchema.parse({ enabled: false })).enabled).toBe(false)
  })

  it('refuses unknown keys and actions, pressures outside 0..1, an inverted ramp, a too-short interval', () => {
    expect(overloadSchema.safeParse({ heap: 0.9 }).success).toBe(false)
    expect(overloadSchema.safeParse({ actions: { shrinkHeap: { heap: 0.9 } } }).success).toBe(false)
    expect(overloadSchema.safeParse({ actions: { stopAcceptingRequests: { heap: 1.5 } } }).success).toBe(
      false,
    )
    expect(
      overloadSchema.safeParse({
        actions: { stopAcceptingRequests: { heap: { scaling: 0.9, saturation: 0.8 } } },
      }).success,
    ).toBe(false)
    expect(overloadSchema.safeParse({ refreshInterval: '1ms' }).success).toBe(false)
    expect(overloadSchema.safeParse({ recovery: -0.1 }).success).toBe(false)
  })
})
