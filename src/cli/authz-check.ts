// `outrigger authz check --config BOOTSTRAP …`: a request's authorization decision on the config files, without a running proxy.

import { type AuthzQuery, AuthzQueryError, checkAuthz, formatAuthz } from '../admin/authz-check.ts'
import { loadBootstrap } from '../bootstrap/load.ts'
import { compileModel } from '../config/compile.ts'
import { loadResources } from '../config/load.ts'
import { ConfigError, formatMessage } from '../config/messages.ts'

/** Exit codes: 0 allowed, 1 denied, 2 a usage error or a config that does not load. */
export async function authzCheck(
  configPath: string,
  query: AuthzQuery,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  try {
    const bootstrap = await loadBootstrap(configPath)
    const loaded = await loadResources(bootstrap.resources, bootstrap.node.namespace)
    const errors = loaded.messages.filter((m) => m.severity === 'error')
    if (errors.length > 0) throw new ConfigError(errors)
    const model = compileModel({
      bootstrap,
      resources: loaded.resources,
      files: loaded.files,
      warnings: [],
      version: 0,
    })
    const port = query.port ?? model.listeners.find((l) => l.direction === 'inbound')?.port ?? 0
    const explanation = checkAuthz(model.authz, { ...query, port })
    out.write(formatAuthz(explanation, model.authz !== undefined))
    return explanation.allowed ? 0 : 1
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const m of error.messages) err.write(`${formatMessage(m)}\n`)
      return 2
    }
    if (error instanceof AuthzQueryError) {
      err.write(`${error.message}\n`)
      return 2
    }
    throw error
  }
}
