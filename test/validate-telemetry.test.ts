// Scenario: `outrigger validate` reports Telemetry problems as it does for the other kinds: parse errors and warnings of a resource file, and the precedence warnings of a bootstrap's workload, each as file:line.

import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mainScript } from './harness/proxy-process.ts'

let dir: string

function validate(...paths: string[]): { code: number | null; stdout: string } {
  const r = spawnSync(process.execPath, [mainScript, 'validate', ...paths], {
    encoding: 'utf8',
    timeout: 20_000,
  })
  return { code: r.status, stdout: r.stdout }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outrigger-validate-telemetry-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('outrigger validate with Telemetry resources', () => {
  it('reports an invalid field with its line and exits 1, and warns of a field not built yet', async () => {
    const file = join(dir, 'telemetry.yaml')
    await writeFile(
      file,
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 150
  metrics:
  - reportingInterval: 5s
`,
    )
    const r = validate(file)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(
      `${file}:6: field 'spec.tracing[0].randomSamplingPercentage': randomSamplingPercentage must be in range [0.0, 100.0]`,
    )
    expect(r.stdout).toContain(
      `${file}:8: warning: field 'spec.metrics[0].reportingInterval' is not supported yet and is ignored`,
    )
  })

  it("with a bootstrap, reports what the workload's Telemetry cannot do (tracing without an endpoint) and exits 0", async () => {
    await mkdir(join(dir, 'istio'), { recursive: true })
    const file = join(dir, 'istio', 'tracing.yaml')
    await writeFile(
      file,
      `apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: sampling, namespace: default}
spec:
  tracing:
  - randomSamplingPercentage: 10
`,
    )
    const bootstrap = join(dir, 'bootstrap.yaml')
    await writeFile(bootstrap, `node: {workload: reviews}\nresources: [${join(dir, 'istio')}]\n`)
    const r = validate(bootstrap)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(
      `${file}:6: warning: tracing is off: the bootstrap has no telemetry.tracing endpoint (the 'opentelemetry' provider)`,
    )
  })
})
