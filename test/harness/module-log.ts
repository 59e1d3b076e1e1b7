// Preloaded with `--import` (NODE_OPTIONS): appends every module this process loads, with its pid and thread, to $OUTRIGGER_MODULE_LOG.

import { appendFileSync } from 'node:fs'
import { registerHooks } from 'node:module'
import { threadId } from 'node:worker_threads'

const logFile = process.env.OUTRIGGER_MODULE_LOG
if (logFile !== undefined) {
  registerHooks({
    load(url, context, nextLoad) {
      appendFileSync(logFile, `${process.pid} ${threadId} ${url}\n`)
      return nextLoad(url, context)
    },
  })
}

/** One module load: the process, its thread (0 is the main thread) and the module's URL. */
export interface ModuleLoad {
  readonly pid: number
  readonly thread: number
  readonly url: string
}

/** Reads a log written by this hook. */
export function parseModuleLog(text: string): ModuleLoad[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [pid, thread, url] = line.split(' ')
      return { pid: Number(pid), thread: Number(thread), url }
    })
}

/** The package a module URL belongs to (`zod`, `@scope/name`), or undefined for our own files and builtins. */
export function packageOf(url: string): string | undefined {
  const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  return match?.[1]
}
