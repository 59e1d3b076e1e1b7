// `outrigger explain`: what the proxy does with one request, asked of a running proxy (admin /explain) or of config files compiled here.

import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { type Explanation, explain } from '../admin/explain.ts'
import { type ExplainQuery, ExplainQueryError, explainParams, explainQuery } from '../admin/explain-query.ts'
import { formatExplanation } from '../admin/explain-text.ts'
import { loadBootstrap } from '../bootstrap/load.ts'
import { type Bootstrap, bootstrapSchema } from '../bootstrap/schema.ts'
import { compileModel } from '../config/compile.ts'
import { loadResources } from '../config/load.ts'
import { ConfigError, formatMessage } from '../config/messages.ts'
import type { Model } from '../config/model.ts'
import { adminAuthority, defaultAdmin, getAdmin, parseAdminAddress } from './admin-client.ts'

export const explainUsage = `  outrigger explain --authority <host[:port]> [--path /] [--method GET] [--header name:value]…
      [--source-principal spiffe://…] [--port N] [--direction outbound|inbound] [--scheme http|https] [-o json]
      [--admin host:port | --config <bootstrap.yaml> | --resources <files or dirs>… [--namespace default]]
      (exit 0 explained, 1 the admin API failed, 2 usage or a config that does not load)
`

const options = {
  authority: { type: 'string' },
  path: { type: 'string' },
  method: { type: 'string' },
  scheme: { type: 'string' },
  header: { type: 'string', multiple: true },
  'source-principal': { type: 'string' },
  port: { type: 'string' },
  direction: { type: 'string' },
  output: { type: 'string', short: 'o' },
  admin: { type: 'string' },
  config: { type: 'string', short: 'c' },
  resources: { type: 'string', multiple: true },
  namespace: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** A usage problem: printed with the usage, exit 2. */
class UsageError extends Error {}

/**
 * The bootstrap for `--resources`: a sidecar of workload `explain` in `namespace` (default `default`) under
 * iptables capture, so that every service port has its virtual listener, as in a pod of the mesh.
 */
function defaultBootstrap(paths: readonly string[], namespace: string): Bootstrap {
  return {
    ...bootstrapSchema.parse({
      node: { workload: 'explain', namespace },
      capture: 'iptables',
      resources: [],
    }),
    file: '(default node)',
    resources: paths.map((p) => resolve(p)),
  }
}

async function compileOffline(bootstrap: Bootstrap): Promise<Model> {
  const loaded = await loadResources(bootstrap.resources, bootstrap.node.namespace)
  const errors = loaded.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  return compileModel({
    bootstrap,
    resources: loaded.resources,
    files: loaded.files,
    warnings: [],
    version: 0,
  })
}

/** Admin /explain as JSON; the text is formatted here, so online and offline read the same. */
async function askAdmin(adminText: string, query: ExplainQuery): Promise<Explanation | string> {
  const admin = parseAdminAddress(adminText)
  if (admin === undefined) throw new UsageError(`--admin must be host:port, not ${adminText}`)
  const params = explainParams(query)
  params.set('format', 'json')
  let answer: { status: number; body: string }
  try {
    answer = await getAdmin(admin, `/explain?${params}`)
  } catch (err) {
    return (err as Error).message
  }
  if (answer.status === 400) throw new UsageError(answer.body.trim())
  if (answer.status !== 200)
    return `admin ${adminAuthority(admin)} answered ${answer.status}: ${answer.body.trim()}`
  return JSON.parse(answer.body) as Explanation
}

export async function explainCommand(
  args: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  try {
    let parsed: ReturnType<
      typeof parseArgs<{ args: string[]; options: typeof options; allowPositionals: true }>
    >
    try {
      parsed = parseArgs({ args: [...args], options, allowPositionals: true })
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const { values, positionals } = parsed
    if (values.help === true) {
      out.write(`usage:\n${explainUsage}`)
      return 0
    }
    const resources = values.resources === undefined ? undefined : [...values.resources, ...positionals]
    if (resources === undefined && positionals.length > 0)
      throw new UsageError(`unexpected argument '${positionals[0]}'`)
    const sources = [values.admin, values.config, resources].filter((s) => s !== undefined).length
    if (sources > 1) throw new UsageError('give one of --admin, --config and --resources')
    const output = values.output ?? 'text'
    if (output !== 'text' && output !== 'json') throw new UsageError(`-o ${output}: text or json`)
    const query = explainQuery({
      authority: values.authority,
      path: values.path,
      method: values.method,
      scheme: values.scheme,
      headers: values.header,
      sourcePrincipal: values['source-principal'],
      port: values.port,
      direction: values.direction,
    })
    let explanation: Explanation
    if (values.config !== undefined)
      explanation = explain(await compileOffline(await loadBootstrap(values.config)), query)
    else if (resources !== undefined)
      explanation = explain(
        await compileOffline(defaultBootstrap(resources, values.namespace ?? 'default')),
        query,
      )
    else {
      const answer = await askAdmin(values.admin ?? defaultAdmin, query)
      if (typeof answer === 'string') {
        err.write(`${answer}\n`)
        return 1
      }
      explanation = answer
    }
    out.write(
      output === 'json' ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation),
    )
    if (resources !== undefined && output === 'text')
      out.write(
        `\n(offline on resource files, as a sidecar in namespace ${values.namespace ?? 'default'} under capture)\n`,
      )
    return 0
  } catch (error) {
    if (error instanceof UsageError || error instanceof ExplainQueryError) {
      err.write(`explain: ${error.message}\nusage:\n${explainUsage}`)
      return 2
    }
    if (error instanceof ConfigError) {
      for (const m of error.messages) err.write(`${formatMessage(m)}\n`)
      return 2
    }
    throw error
  }
}
