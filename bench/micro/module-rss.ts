// Micro-benchmark: the resident memory a Node process needs before any request, module by module.
//
// Run: npm run build && node bench/micro/module-rss.ts   (prints the median VmRSS of 3 fresh processes per case)
//
// It shows where an idle sidecar's RSS comes from: Node itself, then each dependency the proxy loads
// (undici brings its own llhttp WebAssembly build), then Outrigger's whole module graph, then each
// optional feature's modules alone on node (bench/results/lazy-features-2026-12-07.md: which load only
// when configured).

import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const repoRoot = resolve(import.meta.dirname, '..', '..')

/** What each case imports before RSS is read (after a full GC and a pause); `+request` sends one request. */
const cases: [string, string[]][] = [
  ['node alone', []],
  ['+ node:http, one request to itself', ['+request-node']],
  ['+ undici', ['undici']],
  ['+ undici, one request (llhttp wasm instantiated)', ['+request-undici']],
  ['+ zod', ['zod']],
  ['+ yaml', ['yaml']],
  ['+ undici, zod, yaml', ['undici', 'zod', 'yaml']],
  ['Outrigger modules (dist/main.js graph)', [join(repoRoot, 'dist', 'proxy-runtime.js')]],
  ['+ node:http2', ['node:http2']],
  ['+ node:tls', ['node:tls']],
  ['+ node:https', ['node:https']],
  ['+ node-forge', ['node-forge']],
  ['+ hdr-histogram-js', ['hdr-histogram-js']],
  ['+ jose', ['jose']],
  ['+ dns-packet, node:dgram', ['dns-packet', 'node:dgram']],
  ['+ protobufjs', ['protobufjs']],
  ['+ prom-client (its index)', ['prom-client']],
  [
    '+ prom-client (registry, counter, gauge, histogram)',
    [
      'prom-client/lib/registry.js',
      'prom-client/lib/counter.js',
      'prom-client/lib/gauge.js',
      'prom-client/lib/histogram.js',
    ],
  ],
  ['+ @opentelemetry/api', ['@opentelemetry/api']],
  ['+ xxhash-wasm', ['xxhash-wasm']],
  ['+ re2js', ['re2js']],
  ['+ sonic-boom', ['sonic-boom']],
  ['+ koffi', ['koffi']],
]

const script = (modules: string[]): string => `
const modules = ${JSON.stringify(modules)}
for (const m of modules) {
  if (m.startsWith('+request')) await requestOnce(m === '+request-undici')
  else await import(m.startsWith('/') ? 'file://' + m : m)
}
async function requestOnce(viaUndici) {
  const http = await import('node:http')
  const server = http.createServer((req, res) => res.end('ok'))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = 'http://127.0.0.1:' + server.address().port + '/'
  if (viaUndici) {
    const { request } = await import('undici')
    await (await request(url)).body.text()
  } else {
    await new Promise((r) => http.get(url, (res) => res.resume().on('end', r)))
  }
  server.close()
  server.closeAllConnections()
}
globalThis.gc()
await new Promise((r) => setTimeout(r, 300))
globalThis.gc()
const status = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8')
console.log(status.match(/VmRSS:\\s+(\\d+)/)[1])
`

async function rssKiB(modules: string[]): Promise<number> {
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', '--input-type=module', '-e', script(modules)],
    {
      cwd: repoRoot,
    },
  )
  return Number(stdout.trim())
}

for (const [label, modules] of cases) {
  const samples: number[] = []
  for (let i = 0; i < 3; i++) samples.push(await rssKiB(modules))
  samples.sort((a, b) => a - b)
  console.log(`${label.padEnd(52)} ${(samples[1] / 1024).toFixed(1).padStart(6)} MiB`)
}
