// Forces full garbage collections in a child process started with `--inspect=127.0.0.1:<port>`, through its inspector (CDP).

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

/**
 * `HeapProfiler.collectGarbage` `times` times over one CDP session: V8's full, compacting collection, as
 * `global.gc()` would do, without starting the proxy with other V8 flags. Two in a row also free what the
 * first one's weak callbacks and finalizers released.
 */
export async function collectGarbage(url: string, times = 2): Promise<void> {
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true })
    ws.addEventListener('error', () => reject(new Error(`cannot reach the inspector at ${url}`)), {
      once: true,
    })
  })
  try {
    for (let id = 1; id <= times; id++) {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (event: MessageEvent): void => {
          const reply = JSON.parse(String(event.data)) as { id?: number; error?: { message: string } }
          if (reply.id !== id) return
          ws.removeEventListener('message', onMessage)
          if (reply.error !== undefined) reject(new Error(`collectGarbage: ${reply.error.message}`))
          else resolve()
        }
        ws.addEventListener('message', onMessage)
        ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }))
      })
    }
  } finally {
    ws.close()
  }
}
