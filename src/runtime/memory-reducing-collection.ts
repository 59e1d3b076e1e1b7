// V8's memory-reducing collection, when node runs with --expose-gc: what start-up, a compile or a burst left dead goes back to the kernel.

/**
 * 'last-resort' is V8's memory-reducing collection (CollectAllAvailableGarbage): besides compacting the old
 * generation it shrinks the young generation and releases its pages, which a regular collection keeps (at 8 MiB
 * semi-spaces, 12–15 MiB resident). It runs incrementally, in tasks between the event loop's turns. Resolves
 * false when gc() is not exposed (node started without --expose-gc: src/cli/node-settings.ts gives it).
 */
export async function collectAllAvailableGarbage(): Promise<boolean> {
  const gc = globalThis.gc
  if (gc === undefined) return false
  await gc({ type: 'major', execution: 'async', flavor: 'last-resort' })
  return true
}
