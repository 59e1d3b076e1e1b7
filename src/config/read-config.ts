// Reads config in a short-lived child process, so that yaml, zod and the schemas never load in the serving process.

import { type ChildProcess, fork } from 'node:child_process'
import type { Bootstrap } from '../bootstrap/schema.ts'
import { DeferredLines, type LineQuestion } from './deferred-lines.ts'
import { ConfigError, type ConfigMessage } from './messages.ts'
import type { Resource, SpecPath } from './resource.ts'

/** What the reader is asked first. */
export type ReadRequest =
  | { readonly type: 'bootstrap'; readonly file: string }
  | { readonly type: 'resources'; readonly paths: readonly string[]; readonly defaultNamespace: string }

/** What the reader is asked after the resources: the lines of the compiler's messages. */
export type ReaderCommand = { readonly type: 'lines'; readonly questions: readonly LineQuestion[] }

/** A resource as it crosses processes: a Resource without `lineOf`. */
export type PlainResource = Omit<Resource, 'lineOf'>

/** What the reader answers: plain data only (the IPC channel's structured clone). */
export type ReaderReply =
  | { readonly type: 'bootstrap'; readonly bootstrap: Bootstrap }
  | {
      readonly type: 'resources'
      readonly resources: PlainResource[]
      readonly messages: ConfigMessage[]
      readonly files: string[]
    }
  | { readonly type: 'lines'; readonly lines: number[] }
  | { readonly type: 'invalid'; readonly messages: ConfigMessage[] }
  | { readonly type: 'failed'; readonly message: string }

/** The reader's entry, beside this module (src/config/*.ts in development, dist/config/*.js when built). */
const readerScript = new URL(
  import.meta.url.endsWith('.ts') ? './read-config-child.ts' : './read-config-child.js',
  import.meta.url,
)

/**
 * The reader's V8 flags, after ours (a later flag wins): no V8 platform threads and a 1 MiB young
 * generation. For 3000 ServiceEntries the reader peaks at 96 MiB instead of 115, and reads them in 0.75 s
 * instead of 0.95 (bench/results/config-offload-2026-12-07.md). An inspector flag is not passed on: its port is ours.
 */
const READER_FLAGS = ['--single-threaded', '--max-semi-space-size=1']

/**
 * A reader process: each request gets its reply (the bootstrap, then the resources, then the lines of the
 * compiler's messages) until `close`. The same reader may read the bootstrap and then the first resources:
 * one process start fewer before the proxy is ready.
 */
export class ConfigReader {
  readonly #child: ChildProcess
  #waiting: { resolve: (reply: ReaderReply) => void; reject: (error: Error) => void } | undefined
  #gone: Error | undefined

  constructor() {
    // Structured clone over IPC ('advanced'); the reader's own output goes where ours does.
    this.#child = fork(readerScript, [], {
      execArgv: [...process.execArgv.filter((flag) => !flag.startsWith('--inspect')), ...READER_FLAGS],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.#child.on('message', (reply: ReaderReply) => {
      const waiting = this.#waiting
      this.#waiting = undefined
      waiting?.resolve(reply)
    })
    const gone = (error: Error): void => {
      this.#gone ??= error
      const waiting = this.#waiting
      this.#waiting = undefined
      waiting?.reject(this.#gone)
    }
    this.#child.on('error', gone)
    this.#child.on('exit', (code, signal) =>
      gone(new Error(`the config reader exited (${signal ?? `code ${code}`}) before it answered`)),
    )
  }

  ask(message: ReadRequest | ReaderCommand): Promise<ReaderReply> {
    if (this.#gone !== undefined) return Promise.reject(this.#gone)
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
      this.#child.send(message)
    })
  }

  /** The reader's process id (undefined if it could not start). */
  get pid(): number | undefined {
    return this.#child.pid
  }

  /** Ends the channel: the reader exits. */
  close(): void {
    if (this.#child.connected) this.#child.disconnect()
  }
}

/** A reply that is an error becomes the error, thrown. */
function unwrap(reply: ReaderReply): ReaderReply {
  if (reply.type === 'invalid') throw new ConfigError(reply.messages)
  if (reply.type === 'failed') throw new Error(reply.message)
  return reply
}

/**
 * loadBootstrap (bootstrap/load.ts) in a reader process: the Bootstrap, or its ConfigError. The reader is
 * kept for `readResourcesElsewhere` (close it when it is not needed); it exits on a ConfigError.
 */
export async function readBootstrapElsewhere(
  file: string,
): Promise<{ bootstrap: Bootstrap; reader: ConfigReader }> {
  const reader = new ConfigReader()
  try {
    const reply = unwrap(await reader.ask({ type: 'bootstrap', file }))
    if (reply.type !== 'bootstrap') throw new Error(`the config reader answered ${reply.type}`)
    return { bootstrap: reply.bootstrap, reader }
  } catch (error) {
    reader.close()
    throw error
  }
}

/**
 * Resources read in a reader process. Their `lineOf` answers placeholders (deferred-lines.ts):
 * `resolveLines` swaps the real lines into the compiler's messages, asking the reader, until `close`.
 */
export interface ResourcesReadElsewhere {
  readonly resources: Resource[]
  readonly messages: ConfigMessage[]
  readonly files: string[]
  resolveLines(messages: readonly ConfigMessage[]): Promise<ConfigMessage[]>
  /** Ends the reader process. */
  close(): void
}

/**
 * loadResources (config/load.ts) in a reader process (a new one, or `reader` when given), which stays to
 * answer lines until `close()`.
 */
export async function readResourcesElsewhere(
  paths: readonly string[],
  defaultNamespace: string,
  given?: ConfigReader,
): Promise<ResourcesReadElsewhere> {
  let reader = given ?? new ConfigReader()
  let reply: ReaderReply
  try {
    // A given reader that has gone meanwhile is replaced by a new one.
    const request: ReadRequest = { type: 'resources', paths, defaultNamespace }
    reply = await reader.ask(request).catch((error: unknown) => {
      if (given === undefined) throw error
      reader = new ConfigReader()
      return reader.ask(request)
    })
    reply = unwrap(reply)
    if (reply.type !== 'resources') throw new Error(`the config reader answered ${reply.type}`)
  } catch (error) {
    reader.close()
    throw error
  }
  const deferred = new DeferredLines()
  const plain = reply.resources
  const resources = plain.map((resource, index) => withDeferredLines(resource, index, deferred))
  const ask = async (questions: LineQuestion[]): Promise<readonly number[] | undefined> => {
    const answer = await reader.ask({ type: 'lines', questions }).catch(() => undefined)
    return answer?.type === 'lines' ? answer.lines : undefined
  }
  return {
    resources,
    messages: reply.messages,
    files: reply.files,
    resolveLines: (messages) => deferred.resolve(messages, ask, (index) => plain[index].source.line),
    close: () => reader.close(),
  }
}

/** The resource with its `lineOf` answering placeholders for the reader to resolve. */
function withDeferredLines(plain: PlainResource, index: number, deferred: DeferredLines): Resource {
  const lineOf = (path: SpecPath): number => deferred.placeholder(index, path)
  // `plain` is the resource the reader validated, less lineOf: adding it back gives that Resource.
  return { ...plain, lineOf } as Resource
}
