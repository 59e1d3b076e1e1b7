// Forces full garbage collections in a child process started with `--inspect=127.0.0.1:<port>`, reads its live heap, evaluates in it, through its inspector (CDP).

import type { Child } from './children.ts'

/**
 * The node flag that lets collectGarbage() reach the child: the inspector on loopback `port`, no session
 * attached. A port from bench/support/ports.ts, not 0: an ephemeral port the kernel picks could be one
 * handed out to a proxy starting beside it.
 */
export function inspectorFlag(port: number): string {
  return `--inspect=127.0.0.1:${port}`
}

/**
 * The inspector's WebSocket URL, from the last line node printed on stderr at start-up: a proxy that
 * re-executes node with its own settings (src/cli/node-settings.ts) prints a second one, with a new id.
 */
export function inspectorUrl(child: Child): string {
  const matches = [...child.output().matchAll(/Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/g)]
  const last = matches.at(-1)
  if (last === undefined)
    throw new Error(`${child.name} printed no inspector URL (was it started with --inspect?)`)
  return last[1]
}

/** One CDP command. */
interface Command {
  readonly method: string
  readonly params?: Record<string, unknown>
}

/** Sends `commands` one after the other over one CDP session to the inspector at `url`; resolves with their results. */
async function callInspector(url: string, commands: readonly Command[]): Promise<unknown[]> {
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true })
    ws.addEventListener('error', () => reject(new Error(`cannot reach the inspector at ${url}`)), {
      once: true,
    })
  })
  const results: unknown[] = []
  try {
    for (const [index, { method, params }] of commands.entries()) {
      const id = index + 1
      results.push(
        await new Promise<unknown>((resolve, reject) => {
          const onMessage = (event: MessageEvent): void => {
            const reply = JSON.parse(String(event.data)) as {
              id?: number
              result?: unknown
              error?: { message: string }
            }
            if (reply.id !== id) return
            ws.removeEventListener('message', onMessage)
            if (reply.error !== undefined) reject(new Error(`${method}: ${reply.error.message}`))
            else resolve(reply.result)
          }
          ws.addEventListener('message', onMessage)
          ws.send(JSON.stringify({ id, method, params }))
        }),
      )
    }
  } finally {
    ws.close()
  }
  return results
}

/**
 * `HeapProfiler.collectGarbage` `times` times over one CDP session: V8's full, compacting collection, as
 * `global.gc()` would do, without starting the proxy with other V8 flags. Two in a row also free what the
 * first one's weak callbacks and finalizers released.
 */
export async function collectGarbage(url: string, times = 2): Promise<void> {
  await callInspector(
    url,
    Array.from({ length: times }, () => ({ method: 'HeapProfiler.collectGarbage' })),
  )
}

/**
 * The live V8 heap in bytes (CDP `Runtime.getHeapUsage` `usedSize`: V8's used_heap_size, what
 * `process.memoryUsage().heapUsed` and Outrigger's admin /memory `allocated` report), for a process
 * without an admin port.
 */
export async function heapUsedBytes(url: string): Promise<number> {
  const [usage] = await callInspector(url, [{ method: 'Runtime.getHeapUsage' }])
  return (usage as { usedSize: number }).usedSize
}

/** Evaluates `expression` in the process's main context and awaits the promise it returns (CDP `Runtime.evaluate`). */
export async function evaluateAwaited(url: string, expression: string): Promise<void> {
  const [reply] = await callInspector(url, [
    { method: 'Runtime.evaluate', params: { expression, awaitPromise: true } },
  ])
  const { exceptionDetails } = reply as {
    exceptionDetails?: { text: string; exception?: { description?: string } }
  }
  if (exceptionDetails !== undefined)
    throw new Error(`${expression}: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`)
}
