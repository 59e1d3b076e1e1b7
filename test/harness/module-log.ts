// Preloaded into a proxy process (NODE_OPTIONS=--import): appends every module URL it resolves to the file OUTRIGGER_MODULE_LOG names.

import { appendFileSync } from 'node:fs'
import { registerHooks } from 'node:module'

const file = process.env.OUTRIGGER_MODULE_LOG
if (file !== undefined)
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context)
      appendFileSync(file, `${resolved.url}\n`)
      return resolved
    },
  })
