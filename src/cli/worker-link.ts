// One worker thread's side of the messages between workers, relayed by the supervisor: asks and answers, broadcasts, and reports to worker 0.

import type { MessagePort } from 'node:worker_threads'
import type { OtherWorkers } from '../admin/other-workers.ts'
import { log } from '../telemetry/log.ts'
import type { SupervisorCommand, WorkerReport } from './supervisor.ts'

type Answerer = (query: unknown) => unknown
type Receiver = (payload: unknown) => void
type Listener = (payload: unknown, worker: number) => void

/**
 * Every worker registers what it answers (`answer`) and what it does on a broadcast (`onBroadcast`),
 * and may send worker 0 a message (`tellWorkerZero`). Worker 0's admin uses the `OtherWorkers` side.
 * `handle` takes the supervisor's commands that belong here and returns false for the others.
 */
export class WorkerLink implements OtherWorkers {
  readonly #port: MessagePort
  readonly #answerers = new Map<string, Answerer>()
  readonly #receivers = new Map<string, Receiver>()
  readonly #listeners = new Map<string, Set<Listener>>()
  readonly #gathering = new Map<number, (answers: unknown[]) => void>()
  #lastId = 0

  constructor(port: MessagePort) {
    this.#port = port
  }

  /** What this worker answers when worker 0 gathers `topic` (a promise is awaited). */
  answer(topic: string, answerer: Answerer): void {
    this.#answerers.set(topic, answerer)
  }

  /** What this worker does when worker 0 broadcasts `topic`. */
  onBroadcast(topic: string, receiver: Receiver): void {
    this.#receivers.set(topic, receiver)
  }

  /** Sends worker 0 `payload` on `topic` (its `listen` handlers get it). */
  tellWorkerZero(topic: string, payload: unknown): void {
    this.#post({ type: 'to-worker-zero', topic, payload })
  }

  gather(topic: string, query: unknown): Promise<unknown[]> {
    return new Promise((resolve) => {
      const id = ++this.#lastId
      this.#gathering.set(id, resolve)
      this.#post({ type: 'gather', id, topic, query })
    })
  }

  broadcast(topic: string, payload: unknown): void {
    this.#post({ type: 'broadcast', topic, payload })
  }

  listen(topic: string, handler: Listener): () => void {
    const set = this.#listeners.get(topic) ?? new Set<Listener>()
    this.#listeners.set(topic, set)
    set.add(handler)
    return () => {
      set.delete(handler)
    }
  }

  /** Handles a supervisor command if it is one of the link's; false otherwise. */
  handle(command: SupervisorCommand): boolean {
    switch (command.type) {
      case 'ask':
        void this.#answer(command.id, command.topic, command.query)
        return true
      case 'gathered':
        this.#gathering.get(command.id)?.(command.answers.filter((a) => a !== undefined))
        this.#gathering.delete(command.id)
        return true
      case 'broadcast':
        this.#receivers.get(command.topic)?.(command.payload)
        return true
      case 'from-worker':
        for (const handler of this.#listeners.get(command.topic) ?? [])
          handler(command.payload, command.worker)
        return true
      default:
        return false
    }
  }

  async #answer(id: number, topic: string, query: unknown): Promise<void> {
    let data: unknown
    try {
      data = await this.#answerers.get(topic)?.(query)
    } catch (err) {
      log.error(`answering ${topic} for worker 0: ${(err as Error).stack ?? err}`)
    }
    this.#post({ type: 'answer', id, data })
  }

  #post(report: WorkerReport): void {
    this.#port.postMessage(report)
  }
}
