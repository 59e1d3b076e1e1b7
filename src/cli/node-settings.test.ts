import { describe, expect, it } from 'vitest'
import {
  containerMemoryLimit,
  mallocTrimThreshold,
  minOldSpaceMb,
  missingEnvironment,
  missingNodeFlags,
  oldSpaceMbFor,
  semiSpaceMb,
} from './node-settings.ts'

const MiB = 1024 * 1024

describe('the old generation from the container memory limit', () => {
  it('is half of what the fixed footprint leaves, so the process stays under the limit', () => {
    expect(oldSpaceMbFor(256 * MiB)).toBe(80)
    expect(oldSpaceMbFor(512 * MiB)).toBe(208)
    expect(oldSpaceMbFor(1024 * MiB)).toBe(464)
    for (const limitMb of [256, 300, 512, 1000, 1024, 4096]) {
      const old = oldSpaceMbFor(limitMb * MiB)
      // The old generation, the fixed part and as much again for buffers and allocator slack fit.
      expect(2 * old + 96).toBeLessThanOrEqual(limitMb)
    }
  })

  it('never goes below the minimum a loaded proxy needs', () => {
    expect(oldSpaceMbFor(128 * MiB)).toBe(minOldSpaceMb)
    expect(oldSpaceMbFor(64 * MiB)).toBe(minOldSpaceMb)
  })

  it('reads no limit when the cgroup allows as much as the machine has, or libuv reports none', () => {
    expect(containerMemoryLimit(2 ** 64, 16 * 2 ** 30)).toBeUndefined()
    expect(containerMemoryLimit(0, 16 * 2 ** 30)).toBeUndefined()
    expect(containerMemoryLimit(512 * MiB, 16 * 2 ** 30)).toBe(512 * MiB)
  })
})

describe('the node flags the proxy adds', () => {
  it('adds the semi-space cap, and the old-generation limit only under a container limit', () => {
    expect(missingNodeFlags([], '', undefined)).toEqual([
      `--max-semi-space-size=${semiSpaceMb}`,
      '--expose-gc',
    ])
    expect(missingNodeFlags([], '', 512 * MiB)).toEqual([
      `--max-semi-space-size=${semiSpaceMb}`,
      '--expose-gc',
      '--max-old-space-size=208',
    ])
  })

  it("leaves an operator's own settings alone, on node's command line or in NODE_OPTIONS, in either spelling", () => {
    expect(
      missingNodeFlags(
        ['--max-semi-space-size=16', '--no-optimize-for-size', '--no-expose-gc'],
        '',
        undefined,
      ),
    ).toEqual([])
    expect(
      missingNodeFlags(
        [],
        '--max_semi_space_size=4 --max-old-space-size=300 --optimize_for_size --expose_gc',
        512 * MiB,
      ),
    ).toEqual([])
    expect(missingNodeFlags(['--max-old-space-size=100', '--expose-gc'], '', 512 * MiB)).toEqual([
      `--max-semi-space-size=${semiSpaceMb}`,
    ])
    // A flag that only starts like ours is not ours.
    expect(missingNodeFlags(['--max-semi-space-size-x=1', '--expose-gc'], '', undefined)).toEqual([
      `--max-semi-space-size=${semiSpaceMb}`,
    ])
  })
})

describe("glibc's tunables the proxy adds", () => {
  it('fixes the trim threshold, beside the tunables already given', () => {
    expect(missingEnvironment({})).toEqual({
      GLIBC_TUNABLES: `glibc.malloc.trim_threshold=${mallocTrimThreshold}`,
    })
    expect(missingEnvironment({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).toEqual({
      GLIBC_TUNABLES: `glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=${mallocTrimThreshold}`,
    })
  })

  it("leaves an operator's own threshold alone, as a tunable or as glibc's older variable", () => {
    expect(missingEnvironment({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1048576' })).toEqual({})
    expect(
      missingEnvironment({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0' }),
    ).toEqual({})
    expect(missingEnvironment({ MALLOC_TRIM_THRESHOLD_: '65536' })).toEqual({})
    // A tunable that only ends like ours is not ours.
    expect(missingEnvironment({ GLIBC_TUNABLES: 'x.glibc.malloc.trim_threshold=1' })).toEqual({
      GLIBC_TUNABLES: `x.glibc.malloc.trim_threshold=1:glibc.malloc.trim_threshold=${mallocTrimThreshold}`,
    })
  })
})
