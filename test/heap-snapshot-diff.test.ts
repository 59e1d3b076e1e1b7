// The heap snapshot diff of bench/micro/connection-heap.ts (bench/support/heap-snapshot-diff.ts) on real snapshots of this process: what was allocated between them, per object, and who holds it.

import { Session } from 'node:inspector/promises'
import { describe, expect, it } from 'vitest'
import { diffSnapshots, HeapSnapshot } from '../bench/support/heap-snapshot-diff.ts'

/** A snapshot of this process over the inspector, as the tool takes one of the proxy's (one session for both). */
async function snapshot(session: Session): Promise<HeapSnapshot> {
  const chunks: string[] = []
  const onChunk = (m: { params: { chunk: string } }): void => {
    chunks.push(m.params.chunk)
  }
  session.on('HeapProfiler.addHeapSnapshotChunk', onChunk)
  await session.post('HeapProfiler.collectGarbage')
  await session.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
  session.off('HeapProfiler.addHeapSnapshotChunk', onChunk)
  return new HeapSnapshot(chunks.join(''))
}

class HeldPerConnectionMarker {
  readonly payload = { n: 1 }
}

describe('heap snapshot diff', () => {
  it('counts what was allocated between two snapshots per "connection", by constructor and closure, with its holder', async () => {
    const session = new Session()
    session.connect()
    await session.post('HeapProfiler.enable')
    try {
      const n = 500
      const kept: unknown[] = []
      const before = await snapshot(session)
      for (let i = 0; i < n; i++) {
        const marker = new HeldPerConnectionMarker()
        kept.push(marker, function closureHeldPerConnection() {
          return marker
        })
      }
      const after = await snapshot(session)
      const { groups } = diffSnapshots(before, after, n, 400)
      const marker = groups.find((g) => g.group === 'HeldPerConnectionMarker')
      const closure = groups.find((g) => g.group === 'closure closureHeldPerConnection')
      expect(marker?.countPer).toBe(1)
      expect(marker?.bytesPer).toBeGreaterThan(0)
      // Each marker is held by the array and by the closure's context.
      expect(marker?.heldBy.join(' ')).toMatch(/\(array\) \(object elements\)|system \/ Context/)
      expect(closure?.countPer).toBe(1)
      expect(kept).toHaveLength(2 * n)
    } finally {
      session.disconnect()
    }
  })
})
