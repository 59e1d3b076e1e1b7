// Reads and validates the bootstrap file, resolving its relative paths against the file's directory.

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { ConfigError, type ConfigMessage } from '../config/messages.ts'
import { validateValue } from '../config/validate-value.ts'
import { parseYamlDocuments } from '../config/yaml-document.ts'
import { applyAgentEnv } from './agent-env.ts'
import { type Bootstrap, type BootstrapTls, bootstrapSchema } from './schema.ts'

/** `tls` with its paths made absolute against the bootstrap's directory. */
function resolveTls(directory: string, tls: BootstrapTls): BootstrapTls {
  if ('ca' in tls) return { ca: resolve(directory, tls.ca), ttl: tls.ttl }
  return {
    certChain: resolve(directory, tls.certChain),
    privateKey: resolve(directory, tls.privateKey),
    rootCert: resolve(directory, tls.rootCert),
  }
}

/** `telemetry` with a relative access-log path made absolute against the bootstrap's directory, as `tls` paths are. */
function resolveTelemetry(directory: string, telemetry: Bootstrap['telemetry']): Bootstrap['telemetry'] {
  const accessLog = telemetry?.accessLog
  if (accessLog === undefined) return telemetry
  return { ...telemetry, accessLog: { ...accessLog, path: resolve(directory, accessLog.path) } }
}

/**
 * Loads `file`, with the Istio agent's environment variables in `env` applied over it (agent-env.ts);
 * throws a ConfigError listing every problem as `file:line: reason`.
 */
export async function loadBootstrap(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Bootstrap> {
  const fail = (line: number, message: string): ConfigError =>
    new ConfigError([{ severity: 'error', file, line, message }])

  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw fail(0, code === 'ENOENT' ? 'no such file' : `cannot read: ${(error as Error).message}`)
  }

  const parsed = parseYamlDocuments(text)
  const errors: ConfigMessage[] = parsed.messages
    .filter((message) => message.severity === 'error')
    .map((message) => ({ ...message, file }))
  if (errors.length > 0) throw new ConfigError(errors)
  const [document, extra] = parsed.documents
  if (extra !== undefined) throw fail(extra.line, 'a bootstrap file holds a single YAML document')
  const value = document?.value ?? {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw fail(document?.line ?? 1, 'the bootstrap must be a map (node, listeners, resources, …)')
  }

  const validated = validateValue(bootstrapSchema, value, [])
  const lineOf = document?.lineOf ?? (() => 1)
  const problems = validated.problems
    .map(({ severity, path, message }) => ({ severity, file, line: lineOf(path), message }))
    .sort((a, b) => a.line - b.line)
  if (validated.value === undefined) throw new ConfigError(problems)

  const directory = dirname(file)
  const fromEnv = applyAgentEnv(validated.value, env)
  if (fromEnv.errors.length > 0) throw new ConfigError(fromEnv.errors)
  const bootstrap = { ...validated.value, ...fromEnv.settings }
  return {
    ...bootstrap,
    file,
    resources: bootstrap.resources.map((path) => resolve(directory, path)),
    tls: bootstrap.tls === undefined ? undefined : resolveTls(directory, bootstrap.tls),
    telemetry: resolveTelemetry(directory, bootstrap.telemetry),
    warnings: problems,
  }
}
