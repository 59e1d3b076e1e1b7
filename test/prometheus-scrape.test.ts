// Scenario: a real Prometheus (Debian's package) scrapes a sidecar's stats port every second; PromQL over its HTTP API sees the exact request count and a non-zero rate.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as istio from './harness/istio.ts'
import { retryingPortClash } from './harness/mesh.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** The Prometheus binary, installed by scripts/install-test-tools.sh when we are root and it is missing. */
function prometheusBinary(): string | undefined {
  const find = (): string | undefined => {
    try {
      return execFileSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).trim() || undefined
    } catch {
      return undefined
    }
  }
  const found = find()
  if (found !== undefined || process.getuid?.() !== 0) return found
  execFileSync('bash', [join(import.meta.dirname, '..', 'scripts', 'install-test-tools.sh')], {
    stdio: 'inherit',
  })
  return find()
}

const binary = prometheusBinary()
if (binary === undefined)
  console.warn(
    'prometheus-scrape.test.ts skipped: no `prometheus` binary and not root (apt-get install prometheus)',
  )

describe.skipIf(binary === undefined)('a real Prometheus scraping the stats port', () => {
  let dir: string
  let app: Upstream
  let proxy: ProxyProcess
  let prometheus: ChildProcess
  let listen: number
  let promPort: number
  let promLog = ''

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-prometheus-'))
    app = await startUpstream('app')
    proxy = await retryingPortClash(async () => {
      ;[listen] = await freePorts(1)
      return startProxy({
        labels: { app: 'ratings', version: 'v1' },
        resources: {
          'sidecar.yaml': istio.sidecar({
            ingress: [istio.loopbackIngress(listen, app.port, 'HTTP', 'http')],
          }),
        },
      })
    })
    ;[promPort] = await freePorts(1)
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: sidecar
    metrics_path: /stats/prometheus
    static_configs: [{targets: ['127.0.0.1:${proxy.statsPort}']}]
`,
    )
    prometheus = spawn(
      binary as string,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    prometheus.stderr?.on('data', (d: Buffer) => {
      promLog += d.toString()
    })
  }, 120_000)

  afterAll(async () => {
    prometheus?.kill('SIGTERM')
    if (prometheus !== undefined && prometheus.exitCode === null)
      await new Promise((resolve) => prometheus.once('exit', resolve))
    await proxy?.stop()
    await app?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  /** A PromQL instant query's single value, or undefined when the result is empty. */
  async function query(promql: string): Promise<number | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(promql)}`)
      const body = (await res.json()) as { data?: { result: { value: [number, string] }[] } }
      const value = body.data?.result[0]?.value[1]
      return value === undefined ? undefined : Number(value)
    } catch {
      return undefined // not listening yet
    }
  }

  async function send(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const res = await request(`http://127.0.0.1:${listen}/`)
      await res.body.text()
    }
  }

  it('counts every request and shows a rate while traffic flows', async () => {
    const total =
      'sum(istio_requests_total{reporter="destination",destination_app="ratings",response_code="200"})'
    await send(10)
    const seen = async (n: number): Promise<void> =>
      eventually(async () => (await query(total)) === n, 30_000).catch((err: Error) => {
        throw new Error(`${err.message}: last ${total} = ${String(n)} wanted\n${promLog.slice(-2000)}`)
      })
    await seen(10)
    expect(await query(total)).toBe(10)
    await send(15)
    await seen(25)
    const rate = await query('sum(rate(istio_requests_total{reporter="destination"}[30s]))')
    expect(rate).toBeGreaterThan(0)
    expect(await query('sum(istio_request_duration_milliseconds_count{reporter="destination"})')).toBe(25)
  }, 90_000)
})
