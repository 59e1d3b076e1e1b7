// What admin, served by worker 0, may ask of the other worker threads (with --concurrency above 1): gather their answers, tell them something, hear from them.

/**
 * The other worker threads as worker 0's admin sees them. Each worker counts its own traffic, so a
 * page that shows the whole proxy (Prometheus metrics, live stats, top, a tap) asks the others too.
 * Payloads cross threads by structured clone: plain data only. The cli layer implements it
 * (`cli/worker-link.ts`); with one worker there is none, and admin shows its own thread.
 */
export interface OtherWorkers {
  /**
   * Asks every other ready worker `topic` with `query` and resolves with the answers that arrived within
   * 2 s (a worker that has not answered by then is left out; one with no answerer for the topic answers
   * `undefined`, which is left out too).
   */
  gather(topic: string, query: unknown): Promise<unknown[]>
  /** Tells every other worker `topic` with `payload` (no answer). */
  broadcast(topic: string, payload: unknown): void
  /** Hears what the other workers send worker 0 on `topic` (a tap's matching requests); returns the unsubscribe. */
  listen(topic: string, handler: (payload: unknown, worker: number) => void): () => void
}
