// The environment variables Istio's agent reads in a sidecar container (EXIT_ON_ZERO_ACTIVE_CONNECTIONS, MINIMUM_DRAIN_DURATION, ISTIO_KUBE_APP_PROBERS), applied over the bootstrap.

import { parseDurationMs } from '../config/duration.ts'
import type { ConfigMessage } from '../config/messages.ts'
import { validateValue } from '../config/validate-value.ts'
import { type AppProbers, appProbersSchema } from './app-probers.ts'

/** What the environment may override. */
export interface AgentSettings {
  readonly exitOnZeroActiveConnections: boolean
  readonly minimumDrainDuration: string
  readonly appProbers: AppProbers
}

/** Go's strconv.ParseBool, which Istio's env.Register uses for a bool variable. */
function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false
  return undefined
}

/**
 * `settings` with the variables `env` sets applied, as pilot-agent reads them (pilot/cmd/pilot-agent/options:
 * EXIT_ON_ZERO_ACTIVE_CONNECTIONS a bool, MINIMUM_DRAIN_DURATION a Go duration; pkg/istio-agent/status:
 * ISTIO_KUBE_APP_PROBERS the injector's JSON map, whose entries are added to the bootstrap's and win).
 * A variable that cannot be read is an error naming it (Istio's agent refuses to start on a bad prober map).
 */
export function applyAgentEnv(
  settings: AgentSettings,
  env: NodeJS.ProcessEnv,
): { settings: AgentSettings; errors: ConfigMessage[] } {
  const errors: ConfigMessage[] = []
  const fail = (name: string, message: string): void => {
    errors.push({ severity: 'error', file: `environment variable ${name}`, line: 0, message })
  }
  let { exitOnZeroActiveConnections, minimumDrainDuration, appProbers } = settings

  const exitOnZero = env.EXIT_ON_ZERO_ACTIVE_CONNECTIONS
  if (exitOnZero !== undefined && exitOnZero !== '') {
    const value = parseGoBool(exitOnZero)
    if (value === undefined) fail('EXIT_ON_ZERO_ACTIVE_CONNECTIONS', `'${exitOnZero}' is not a boolean`)
    else exitOnZeroActiveConnections = value
  }

  const minimum = env.MINIMUM_DRAIN_DURATION
  if (minimum !== undefined && minimum !== '') {
    try {
      parseDurationMs(minimum)
      minimumDrainDuration = minimum
    } catch (error) {
      fail('MINIMUM_DRAIN_DURATION', (error as Error).message)
    }
  }

  const probers = env.ISTIO_KUBE_APP_PROBERS
  if (probers !== undefined && probers !== '') {
    let json: unknown
    try {
      json = JSON.parse(probers)
    } catch (error) {
      fail('ISTIO_KUBE_APP_PROBERS', `failed to decode app prober: ${(error as Error).message}`)
    }
    if (json !== undefined) {
      const validated = validateValue(appProbersSchema, json, [])
      for (const problem of validated.problems) fail('ISTIO_KUBE_APP_PROBERS', problem.message)
      if (validated.value !== undefined) appProbers = { ...appProbers, ...validated.value }
    }
  }
  return { settings: { exitOnZeroActiveConnections, minimumDrainDuration, appProbers }, errors }
}
