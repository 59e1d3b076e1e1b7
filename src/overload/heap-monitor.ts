// The V8 heap of this thread against its limit: the pressure that, at 1, is V8's fatal out-of-memory.

import { getHeapStatistics } from 'node:v8'

/**
 * Envoy's fixed_heap monitor (source/extensions/resource_monitors/fixed_heap) for a V8 isolate: used
 * heap over `heap_size_limit`. Each worker thread has its own isolate and limit, so each thread reads
 * its own. Buffers (request and response bodies) live outside the V8 heap and are not counted here.
 */
export function heapPressure(): number {
  const heap = getHeapStatistics()
  return heap.heap_size_limit > 0 ? heap.used_heap_size / heap.heap_size_limit : 0
}
