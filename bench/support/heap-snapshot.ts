// Takes V8 heap snapshots of a child process started with `--inspect`, over one CDP session, as DevTools' Memory tab does.

/**
 * One inspector session kept open between snapshots: V8 keeps an object's snapshot id for as long as the
 * heap profiler tracks it, so two snapshots of one session tell new objects from old ones by id.
 */
export class HeapSnapshotSession {
  readonly #ws: WebSocket
  #nextId = 1
  readonly #pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>()
  #chunks: string[] = []

  private constructor(ws: WebSocket) {
    this.#ws = ws
    ws.addEventListener('message', (event) => this.#onMessage(String(event.data)))
  }

  /** Opens a session on the inspector at `url` (bench/support/inspector-gc.ts `inspectorUrl`). */
  static async open(url: string): Promise<HeapSnapshotSession> {
    const ws = new WebSocket(url)
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true })
      ws.addEventListener('error', () => reject(new Error(`cannot reach the inspector at ${url}`)), {
        once: true,
      })
    })
    const session = new HeapSnapshotSession(ws)
    await session.#call('HeapProfiler.enable')
    return session
  }

  #onMessage(text: string): void {
    const message = JSON.parse(text) as {
      id?: number
      method?: string
      params?: { chunk?: string }
      error?: { message: string }
    }
    if (message.method === 'HeapProfiler.addHeapSnapshotChunk') {
      this.#chunks.push(message.params?.chunk ?? '')
      return
    }
    if (message.id === undefined) return
    const waiting = this.#pending.get(message.id)
    if (waiting === undefined) return
    this.#pending.delete(message.id)
    if (message.error !== undefined) waiting.reject(new Error(message.error.message))
    else waiting.resolve()
  }

  #call(method: string, params: Record<string, unknown> = {}): Promise<void> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.#ws.send(JSON.stringify({ id, method, params }))
    })
  }

  /** Two full collections (as inspector-gc.ts), then a snapshot: its JSON text (the .heapsnapshot format). */
  async take(): Promise<string> {
    await this.#call('HeapProfiler.collectGarbage')
    await this.#call('HeapProfiler.collectGarbage')
    this.#chunks = []
    await this.#call('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
    const text = this.#chunks.join('')
    this.#chunks = []
    return text
  }

  close(): void {
    this.#ws.close()
  }
}
