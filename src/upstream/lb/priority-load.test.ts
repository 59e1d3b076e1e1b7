import { describe, expect, it } from 'vitest'
import { distributeLoad, levelFor, loadExcluding, priorityLoad } from './priority-load.ts'

const level = (total: number, healthy: number) => ({ total, healthy })

describe("priority load (Envoy's LoadBalancerBase)", () => {
  it('gives everything to level 0 while it is healthy enough (1.4 overprovisioning)', () => {
    expect(priorityLoad([level(10, 10), level(10, 10)], 0).load).toEqual([100, 0])
    // 8 of 10 healthy: 1.4 × 80% = 112% → still all of the load.
    expect(priorityLoad([level(10, 8), level(10, 10)], 0).load).toEqual([100, 0])
  })

  it('spills what level 0 cannot take to the next levels in order', () => {
    // 2 of 4 healthy: 70%; level 1 takes the other 30.
    expect(priorityLoad([level(4, 2), level(4, 4)], 0)).toEqual({
      load: [70, 30],
      panic: [false, false],
      health: [70, 100],
    })
    expect(priorityLoad([level(10, 2), level(10, 3), level(10, 10)], 0).load).toEqual([28, 42, 30])
  })

  it('scales loads up when the levels together are under 100% healthy', () => {
    // Healths 35 and 14: 49 in all; 35/49 → 71, 14/49 → 28, the leftover 1 to the first level.
    expect(priorityLoad([level(4, 1), level(10, 1)], 0).load).toEqual([72, 28])
  })

  it('with panic disabled and nothing healthy, sends the load to level 0 (which has no endpoint to offer)', () => {
    expect(priorityLoad([level(2, 0), level(2, 0)], 0)).toEqual({
      load: [100, 0],
      panic: [false, false],
      health: [0, 0],
    })
  })

  it('puts a level under the panic threshold in panic; all levels in panic share load by endpoint count', () => {
    const some = priorityLoad([level(4, 1), level(4, 4)], 50)
    expect(some.panic).toEqual([true, false])
    expect(some.load).toEqual([35, 65])
    const all = priorityLoad([level(2, 0), level(6, 0)], 50)
    expect(all).toEqual({ load: [25, 75], panic: [true, true], health: [0, 0] })
  })

  it('distributeLoad gives rounding leftovers to the first level with any health', () => {
    expect(distributeLoad([0, 33, 33, 33])).toEqual([0, 34, 33, 33])
    expect(distributeLoad([0, 0])).toBeUndefined()
  })

  it('previous_priorities: excluded levels get nothing; excluding every level falls back to the original load', () => {
    const health = [100, 100, 50]
    expect(loadExcluding(health, 0b001, [100, 0, 0])).toEqual([0, 100, 0])
    expect(loadExcluding(health, 0b011, [100, 0, 0])).toEqual([0, 0, 100])
    expect(loadExcluding(health, 0b111, [100, 0, 0])).toEqual([100, 0, 0])
  })

  it('levelFor walks the cumulative loads', () => {
    expect([0, 69, 70, 99].map((p) => levelFor([70, 30], p))).toEqual([0, 0, 1, 1])
    expect([0, 99].map((p) => levelFor([0, 100], p))).toEqual([1, 1])
  })
})
