// Scenario: config is read in a short-lived child process: the serving process never loads yaml or zod, and messages keep their file:line.

import { readdirSync, readFileSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { egressSidecar } from './harness/istio.ts'
import { type ModuleLoad, packageOf, parseModuleLog } from './harness/module-log.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, repoRoot, startProxy } from './harness/proxy-process.ts'

/** The packages only reading config needs: they must never load in the serving process. */
const CONFIG_PACKAGES = ['zod', 'yaml', 'js-yaml']

const logFiles: string[] = []
let proxy: ProxyProcess | undefined

afterEach(async () => {
  await proxy?.stop()
  proxy = undefined
})

afterAll(async () => {
  for (const file of logFiles) await rm(file, { force: true })
})

/** Starts the proxy with every module load of it, its threads and its children logged. */
async function startLogged(
  resources: Record<string, string>,
  extraBootstrap = '',
): Promise<{ proxy: ProxyProcess; loads: () => Promise<ModuleLoad[]> }> {
  const logFile = join(tmpdir(), `outrigger-modules-${process.pid}-${logFiles.length}.log`)
  logFiles.push(logFile)
  const hook = join(repoRoot, 'test', 'harness', 'module-log.ts')
  const started = await startProxy({
    resources,
    extraBootstrap,
    env: { NODE_OPTIONS: `--import ${hook}`, OUTRIGGER_MODULE_LOG: logFile },
  })
  return { proxy: started, loads: async () => parseModuleLog(await readFile(logFile, 'utf8')) }
}

/** The config packages each process loaded, by pid. */
function configPackagesByPid(loads: readonly ModuleLoad[]): Map<number, Set<string>> {
  const byPid = new Map<number, Set<string>>()
  for (const load of loads) {
    const name = packageOf(load.url)
    if (name === undefined || !CONFIG_PACKAGES.includes(name)) continue
    const names = byPid.get(load.pid) ?? new Set<string>()
    names.add(name)
    byPid.set(load.pid, names)
  }
  return byPid
}

/** The pids of `pid`'s child processes, from /proc (each thread's children). */
function childrenOf(pid: number): number[] {
  const pids: number[] = []
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
    if (text !== '') pids.push(...text.split(/\s+/).map(Number))
  }
  return pids
}

/** The 1-based line of the first line of `text` that contains `needle`. */
function lineOf(text: string, needle: string): number {
  const index = text.split('\n').findIndex((line) => line.includes(needle))
  if (index === -1) throw new Error(`no line with ${needle}`)
  return index + 1
}

interface Dump {
  model: { version: number; warnings: { file: string; line: number; message: string }[] }
  lastError: { messages: { file: string; line: number; message: string }[] } | null
}

describe('config read in a child process', () => {
  it('the serving process loads neither yaml nor zod, at start or on reload; the readers do', async () => {
    const [port] = await freePorts(1)
    const sidecar = egressSidecar(port)
    const started = await startLogged({ 'sidecar.yaml': sidecar })
    const running = started.proxy
    proxy = running
    const servingPid = running.child.pid
    await running.writeResource('sidecar.yaml', `${sidecar}# changed\n`)
    await eventually(
      async () => ((await (await running.admin('/config_dump')).json()) as Dump).model.version === 2,
    )

    // Every reader has exited: what it loaded is not held by any process of the proxy's.
    await eventually(async () => childrenOf(servingPid as number).length === 0)

    const loads = await started.loads()
    const byPid = configPackagesByPid(loads)
    // The serving process ran the proxy (its own modules are in the log) and loaded no config package.
    expect(loads.some((l) => l.pid === servingPid && l.url.endsWith('/proxy-runtime.ts'))).toBe(true)
    expect(byPid.get(servingPid as number)).toBeUndefined()
    // The readers did: the start's (the bootstrap, then the first resources) and the reload's.
    const readers = [...byPid.keys()].filter((pid) => pid !== servingPid)
    expect(readers.length).toBeGreaterThanOrEqual(2)
    for (const pid of readers) expect(byPid.get(pid)).toContain('zod')
  })

  it('with worker threads, neither the supervisor nor a worker loads yaml or zod', async () => {
    const [port] = await freePorts(1)
    const started = await startLogged(
      {
        'sidecar.yaml': egressSidecar(port),
      },
      'concurrency: 2\n',
    )
    proxy = started.proxy
    const loads = await started.loads()
    const servingPid = proxy.child.pid
    // Two worker threads ran in the serving process…
    const threads = new Set(loads.filter((l) => l.pid === servingPid).map((l) => l.thread))
    expect(threads.size).toBeGreaterThanOrEqual(3)
    // …and none of its threads loaded a config package, while each worker's readers did.
    const byPid = configPackagesByPid(loads)
    expect(byPid.get(servingPid as number)).toBeUndefined()
    // The supervisor's reader read the bootstrap (the workers are given it), each worker's its resources.
    expect([...byPid.keys()].filter((pid) => pid !== servingPid).length).toBeGreaterThanOrEqual(3)
  })

  it("the compiler's warnings and errors carry the line of the field they are about", async () => {
    const [port] = await freePorts(1)
    const allowAny = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
    - port: {number: ${port}, protocol: HTTP, name: http}
      bind: 127.0.0.1
      hosts: ["./*"]
  outboundTrafficPolicy:
    mode: ALLOW_ANY
`
    const running = await startProxy({ resources: { 'sidecar.yaml': allowAny } })
    proxy = running
    const dump = async (): Promise<Dump> => (await (await running.admin('/config_dump')).json()) as Dump
    // Made by the compiler, not the reader: its line is asked of the reader after compiling.
    const warning = (await dump()).model.warnings.find((w) =>
      w.message.includes('outboundTrafficPolicy ALLOW_ANY'),
    )
    expect(warning).toMatchObject({
      file: join(proxy.dir, 'istio', 'sidecar.yaml'),
      line: lineOf(allowAny, 'mode: ALLOW_ANY'),
    })

    // An ingress port that the admin listener has: the compiler rejects it, and the last good model stays.
    const clash = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  ingress:
    - defaultEndpoint: 127.0.0.1:8080
      port:
        name: http
        protocol: HTTP
        number: ${proxy.adminPort}
`
    await proxy.writeResource('sidecar.yaml', clash)
    await eventually(async () => (await dump()).lastError !== null)
    const after = await dump()
    expect(after.model.version).toBe(1)
    expect(after.lastError?.messages).toContainEqual(
      expect.objectContaining({
        file: join(proxy.dir, 'istio', 'sidecar.yaml'),
        line: lineOf(clash, `number: ${proxy.adminPort}`),
        message: expect.stringContaining(`port ${proxy.adminPort} of ingress[0] is already used`),
      }),
    )
  })
})
