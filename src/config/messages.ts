// Config problems as users see them: `file:line: reason`, as errors (rejected) or warnings (accepted).

export type Severity = 'error' | 'warning'

export interface ConfigMessage {
  readonly severity: Severity
  readonly file: string
  readonly line: number
  readonly message: string
}

export function formatMessage(m: ConfigMessage): string {
  return `${m.file}:${m.line}: ${m.severity === 'warning' ? 'warning: ' : ''}${m.message}`
}

/** Thrown when a config input cannot be used; carries every error found, not only the first. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  readonly messages: readonly ConfigMessage[]

  constructor(messages: readonly ConfigMessage[]) {
    super(messages.map(formatMessage).join('\n'))
    this.name = 'ConfigError'
    this.messages = messages
  }
}
