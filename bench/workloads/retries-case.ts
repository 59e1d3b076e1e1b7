// The retries case: a service whose two endpoints each answer 503 to a fifth of requests, at 1000 req/s through proxies that retry on another endpoint.

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Failure, RateCase, SystemInfo } from '../report/results.ts'
import type { Plan } from '../support/options.ts'
import { freePorts } from '../support/ports.ts'
import { direct } from '../systems/direct.ts'
import { type FlakyUpstream, startFlakyUpstream, waitFlaky } from '../systems/flaky-upstream.ts'
import { HAPROXY_COMMON, haproxySystem, startHaproxy } from '../systems/haproxy.ts'
import { nginxSystem } from '../systems/nginx.ts'
import { outrigger } from '../systems/outrigger.ts'
import { buildRevision, outriggerBaseline, shortCommit } from '../systems/outrigger-baseline.ts'
import { egressSidecar, serviceEntry, startOutrigger } from '../systems/outrigger-process.ts'
import type { RunningSystem } from '../systems/system.ts'
import { nginxHttpCommon, nginxMain, startNginx } from '../systems/upstream.ts'
import { log } from './interleave.ts'
import { measureAtFixedRate } from './rate-case.ts'

/** The share of requests each endpoint fails, in percent. */
const FAIL_PERCENT = 20
/** Retries after the first try, for every proxy that can make them (three tries in all). */
const RETRIES = 2
const SERVICE = 'flaky'

/**
 * Outrigger's egress listener, with Istio's resources for a two-endpoint service and a route that
 * retries 5xx; with `baseline`, Outrigger built from that revision.
 */
async function startOutriggerRetrying(
  workDir: string,
  up: FlakyUpstream,
  baseline?: string,
): Promise<RunningSystem> {
  const [egress] = await freePorts(1)
  const commit = baseline === undefined ? undefined : shortCommit(baseline)
  const proxy = await startOutrigger({
    name: commit === undefined ? 'outrigger-retries' : `outrigger-retries-${commit}`,
    workDir,
    mainScript:
      baseline === undefined
        ? undefined
        : buildRevision(baseline, join(workDir, `retries-baseline-${commit}`)),
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': `${serviceEntry(SERVICE, SERVICE, egress, up.ports)}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${SERVICE}, namespace: default}
spec:
  hosts: [${SERVICE}]
  http:
    - route: [{destination: {host: ${SERVICE}}}]
      retries: {attempts: ${RETRIES}, retryOn: 5xx}
`,
    },
  })
  return {
    name: commit === undefined ? 'outrigger' : 'outrigger-baseline',
    target: { port: egress, host: SERVICE },
    pids: [proxy.child.pid],
    detail:
      (commit === undefined ? '' : `built from ${commit}, `) +
      `egress listener, a ServiceEntry with both endpoints and a VirtualService with \`retries: {attempts: ${RETRIES}, retryOn: 5xx}\`: ` +
      'round robin, each retry on an endpoint not tried yet when there is one, after Envoy’s default jittered backoff (25 ms base)',
    stop: () => proxy.stop(),
  }
}

/** nginx passes a 503 on to the next server; it tries each server at most once, so two tries here. */
async function startNginxRetrying(nginx: string, workDir: string, up: FlakyUpstream): Promise<RunningSystem> {
  const dir = join(workDir, 'nginx-retries')
  await mkdir(dir, { recursive: true })
  const [port] = await freePorts(1)
  const conf = `${nginxMain(dir)}
http {
${nginxHttpCommon(dir)}
  upstream flaky {
    server 127.0.0.1:${up.ports[0]} max_fails=0;
    server 127.0.0.1:${up.ports[1]} max_fails=0;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://flaky;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_503;
      proxy_next_upstream_tries ${RETRIES + 1};
    }
  }
}
`
  const child = await startNginx('nginx retries', nginx, dir, conf)
  await waitFlaky(port, () => child.output(), child.exited)
  return {
    name: 'nginx',
    target: { port },
    pids: [child.pid],
    detail:
      '`proxy_next_upstream error timeout http_503` over both endpoints, at once (no backoff); nginx tries each server of an upstream once per request, so two tries',
    stop: () => child.stop(),
  }
}

/** haproxy re-sends on a 503 (`retry-on`), to another server each time (`option redispatch 1`). */
async function startHaproxyRetrying(
  haproxy: string,
  workDir: string,
  up: FlakyUpstream,
): Promise<RunningSystem> {
  const [port] = await freePorts(1)
  const conf = `${HAPROXY_COMMON}
frontend bench
  bind 127.0.0.1:${port}
  default_backend flaky

backend flaky
  balance roundrobin
  retries ${RETRIES}
  retry-on 503 conn-failure empty-response
  option redispatch 1
  server a 127.0.0.1:${up.ports[0]}
  server b 127.0.0.1:${up.ports[1]}
`
  const child = await startHaproxy('haproxy retries', haproxy, join(workDir, 'haproxy-retries'), conf)
  await waitFlaky(port, () => child.output(), child.exited)
  return {
    name: 'haproxy',
    target: { port },
    pids: [child.pid],
    detail: `\`retries ${RETRIES}\`, \`retry-on 503\`, \`option redispatch 1\` (each retry on another server), at once (no backoff)`,
    stop: () => child.stop(),
  }
}

export async function runRetriesCase(
  workDir: string,
  plan: Plan,
  tools: Record<string, string>,
): Promise<{ result: RateCase; failures: Failure[]; systems: SystemInfo[] }> {
  const failures: Failure[] = []
  const up = await startFlakyUpstream(tools.nginx, workDir, FAIL_PERCENT)
  const systems: RunningSystem[] = [
    {
      name: 'direct',
      target: { port: up.ports[0] },
      pids: [],
      detail: 'client → one endpoint, no retry',
      stop: async () => {},
    },
  ]
  const starters: [string, () => Promise<RunningSystem>][] = [
    ['outrigger', () => startOutriggerRetrying(workDir, up)],
    ['outrigger-baseline', () => startOutriggerRetrying(workDir, up, plan.baseline)],
    ['nginx', () => startNginxRetrying(tools.nginx, workDir, up)],
    ['haproxy', () => startHaproxyRetrying(tools.haproxy, workDir, up)],
  ]
  try {
    for (const [name, start] of starters) {
      if (!(plan.systems as readonly string[]).includes(name)) continue
      if (name === 'outrigger-baseline' && plan.baseline === undefined) continue
      try {
        systems.push(await start())
      } catch (err) {
        failures.push({ where: `start ${name} (retries)`, error: (err as Error).message })
        log(`start ${name} (retries) FAILED: ${(err as Error).message}`)
      }
    }
    const measured = await measureAtFixedRate(
      'retries',
      systems,
      plan,
      `HTTP/1.1, 1 KiB at a fixed ${plan.rate} req/s to a service of two endpoints that each answer 503 to ${FAIL_PERCENT} % of requests, retried on another endpoint`,
    )
    failures.push(...measured.failures)
    // The labels of the same systems in the other cases.
    const defs = [
      direct,
      outrigger,
      nginxSystem(tools.nginx),
      haproxySystem(tools.haproxy),
      ...(plan.baseline === undefined ? [] : [outriggerBaseline(plan.baseline)]),
    ]
    const label = (name: string): string => defs.find((d) => d.name === name)?.label ?? name
    const notes = systems.map((s) => `${label(s.name)}: ${s.detail}.`).join(' ')
    return {
      result: { ...measured.result, note: notes, failPercent: FAIL_PERCENT },
      failures,
      systems: systems.map((s) => ({ name: s.name, label: label(s.name), detail: s.detail })),
    }
  } finally {
    for (const s of systems) await s.stop()
    await up.stop()
  }
}
