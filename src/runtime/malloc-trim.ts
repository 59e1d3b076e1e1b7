// glibc's malloc_trim(0) through koffi: every free page of the C allocator's arenas back to the kernel.

import { createRequire } from 'node:module'

/** malloc_trim(0): returns 1 when memory was given back, 0 when there was none to give. */
export type MallocTrim = () => number

/**
 * Loads malloc_trim from libc.so.6. koffi costs about 5.6 MiB of RSS, so a caller loads it when a trim is
 * first due. Throws where it cannot be loaded (not glibc).
 */
export function loadMallocTrim(): MallocTrim {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
  const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number
  return () => trim(0)
}
