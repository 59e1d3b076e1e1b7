// The config reader process: reads and validates the bootstrap or the Istio resources (yaml, zod), hands back plain data, answers source lines, and exits.

import { ConfigError } from './messages.ts'
import type { ReaderCommand, ReaderReply, ReadRequest } from './read-config.ts'
import type { Resource } from './resource.ts'

if (process.send === undefined)
  throw new Error('read-config-child.ts runs only as a child with an IPC channel')
const send = (reply: ReaderReply): void => {
  process.send?.(reply)
}

/** A failure as plain data: a ConfigError's messages, or any other error's text. */
function failure(error: unknown): ReaderReply {
  if (error instanceof ConfigError) return { type: 'invalid', messages: [...error.messages] }
  return { type: 'failed', message: (error as Error).stack ?? String(error) }
}

/** The resources read last, whose lines the compiler asks for. */
let loaded: Resource[] = []

async function answer(message: ReadRequest | ReaderCommand): Promise<void> {
  // Each request imports only its own reader: the bootstrap's schema, or the Istio kinds' (less to load, sooner done).
  if (message.type === 'bootstrap') {
    const { loadBootstrap } = await import('../bootstrap/load.ts')
    send({ type: 'bootstrap', bootstrap: await loadBootstrap(message.file) })
    // The resources are likely asked next: their modules load while the proxy starts.
    import('./load.ts').catch(() => {})
    return
  }
  if (message.type === 'lines') {
    send({ type: 'lines', lines: message.questions.map(([index, path]) => loaded[index]?.lineOf(path) ?? 0) })
    return
  }
  const { loadResources } = await import('./load.ts')
  const { resources, messages, files } = await loadResources(message.paths, message.defaultNamespace)
  loaded = resources
  // Everything but `lineOf` (a closure over this process's YAML): the compiler's lines are asked for later.
  const plain = resources.map(({ kind, apiVersion, name, namespace, spec, source }) => ({
    kind,
    apiVersion,
    name,
    namespace,
    spec,
    source,
  }))
  send({ type: 'resources', resources: plain, messages, files })
}

process.on('message', (message: ReadRequest | ReaderCommand) => {
  answer(message).catch((error: unknown) => {
    send(failure(error))
    process.disconnect()
  })
})
// The serving process ends the channel when it has no more questions (or dies): then this process ends.
process.once('disconnect', () => process.exit(0))
