// Measures `concurrency: 2` of two builds, alternating: RSS of the whole process tree idle and after load, and req/s.
//
// Run: node bench/micro/workers-footprint.ts <main.ts or main.js of build A> <of build B> [--rounds 2] [--seconds 6]
// (e.g. a checkout whose workers are processes against this one, whose workers are threads). RSS sums
// VmRSS over the process and its children; load is autocannon, 50 connections, 1 KiB responses.

import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '2' }, seconds: { type: 'string', default: '6' } },
})
if (positionals.length !== 2) throw new Error('usage: workers-footprint.ts <entry A> <entry B>')

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** `pid` and its descendants. */
async function processTree(pid: number): Promise<number[]> {
  const tree = [pid]
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid === pid) tree.push(...(await processTree(Number(entry))))
  }
  return tree
}

async function rssMiB(pids: readonly number[]): Promise<number> {
  let kib = 0
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
    kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  }
  return kib / 1024
}

const body = Buffer.alloc(1024, 'x')
const upstream = createServer((req, res) => {
  req.resume()
  res.end(body)
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const upstreamPort = (upstream.address() as AddressInfo).port

async function measure(entry: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'workers-footprint-'))
  await mkdir(join(dir, 'istio'))
  const [port, admin, health] = [await freePort(), await freePort(), await freePort()]
  await writeFile(
    join(dir, 'bootstrap.yaml'),
    `node: {workload: bench, namespace: default}
listeners:
  admin: {port: ${admin}, address: 127.0.0.1}
  health: {port: ${health}, address: 127.0.0.1}
resources: [./istio/]
concurrency: 2
`,
  )
  await writeFile(
    join(dir, 'istio', 'sidecar.yaml'),
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  ingress:
    - port: {number: ${port}, protocol: HTTP, name: http}
      bind: 127.0.0.1
      defaultEndpoint: 127.0.0.1:${upstreamPort}
`,
  )
  const child: ChildProcess = spawn(
    process.execPath,
    ['--max-semi-space-size=8', entry, 'run', '--config', join(dir, 'bootstrap.yaml')],
    { stdio: 'ignore' },
  )
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${health}/healthz/ready`).catch(() => undefined)
    if (ready?.status === 200) break
    await new Promise((r) => setTimeout(r, 100))
  }
  await new Promise((r) => setTimeout(r, 2000))
  const pids = await processTree(child.pid as number)
  const idle = await rssMiB(pids)
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/`,
    connections: 50,
    duration: Number(values.seconds),
  })
  const loaded = await rssMiB(await processTree(child.pid as number))
  child.kill('SIGTERM')
  await once(child, 'exit')
  return `| ${entry} | ${pids.length} | ${idle.toFixed(1)} | ${loaded.toFixed(1)} | ${Math.round(result.requests.average)} | ${result.non2xx} |`
}

console.log('| entry | processes | idle RSS MiB | RSS after load MiB | req/s | non-2xx |')
console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
for (let round = 0; round < Number(values.rounds); round++) {
  // Alternate the order, so a drift of the machine does not always land on the same build.
  const order = round % 2 === 0 ? positionals : [...positionals].reverse()
  for (const entry of order) console.log(await measure(entry))
}
upstream.close()
