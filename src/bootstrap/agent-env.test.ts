// Unit: the Istio agent's environment variables over the bootstrap (EXIT_ON_ZERO_ACTIVE_CONNECTIONS, MINIMUM_DRAIN_DURATION, ISTIO_KUBE_APP_PROBERS).

import { describe, expect, it } from 'vitest'
import { type AgentSettings, applyAgentEnv } from './agent-env.ts'

const bootstrap: AgentSettings = {
  exitOnZeroActiveConnections: false,
  minimumDrainDuration: '5s',
  appProbers: { '/app-health/web/livez': { kind: 'tcpSocket', timeoutMs: 1000, port: 80 } },
}

describe('applyAgentEnv', () => {
  it('keeps the bootstrap when nothing is set', () => {
    expect(applyAgentEnv(bootstrap, {})).toEqual({ settings: bootstrap, errors: [] })
  })

  it('reads the bool as Go strconv.ParseBool and the duration as Go does', () => {
    const { settings } = applyAgentEnv(bootstrap, {
      EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'T',
      MINIMUM_DRAIN_DURATION: '1m30s',
    })
    expect(settings.exitOnZeroActiveConnections).toBe(true)
    expect(settings.minimumDrainDuration).toBe('1m30s')
    expect(
      applyAgentEnv(settings, { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: '0' }).settings.exitOnZeroActiveConnections,
    ).toBe(false)
  })

  it("adds the injector's probers to the bootstrap's, the environment's winning, with Kubernetes' defaults", () => {
    const env = JSON.stringify({
      '/app-health/web/livez': { httpGet: { port: 8080 } },
      '/app-lifecycle/web/prestopz': { grpc: { port: 9090 }, timeoutSeconds: 3 },
    })
    const { settings, errors } = applyAgentEnv(bootstrap, { ISTIO_KUBE_APP_PROBERS: env })
    expect(errors).toEqual([])
    expect(settings.appProbers).toEqual({
      '/app-health/web/livez': {
        kind: 'httpGet',
        timeoutMs: 1000,
        path: '/',
        port: 8080,
        scheme: 'HTTP',
        httpHeaders: [],
      },
      '/app-lifecycle/web/prestopz': { kind: 'grpc', timeoutMs: 3000, port: 9090, service: '' },
    })
  })

  it('names the variable and the problem when one cannot be read', () => {
    const bad = (env: NodeJS.ProcessEnv): string[] =>
      applyAgentEnv(bootstrap, env).errors.map((e) => `${e.file}: ${e.message}`)
    expect(bad({ EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'yes' })).toEqual([
      "environment variable EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'yes' is not a boolean",
    ])
    expect(bad({ MINIMUM_DRAIN_DURATION: '5' })[0]).toMatch(/MINIMUM_DRAIN_DURATION: invalid duration '5'/)
    expect(bad({ ISTIO_KUBE_APP_PROBERS: '{' })[0]).toMatch(
      /ISTIO_KUBE_APP_PROBERS: failed to decode app prober/,
    )
    const twoKinds = { '/app-health/a/readyz': { httpGet: { port: 1 }, tcpSocket: { port: 1 } } }
    expect(bad({ ISTIO_KUBE_APP_PROBERS: JSON.stringify(twoKinds) })[0]).toMatch(
      /must be one of type httpGet, tcpSocket or grpc/,
    )
    const namedPort = { '/app-health/a/readyz': { tcpSocket: { port: 'http' } } }
    expect(bad({ ISTIO_KUBE_APP_PROBERS: JSON.stringify(namedPort) })).toHaveLength(1)
  })
})
