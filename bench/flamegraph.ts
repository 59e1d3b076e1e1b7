// Profiles the compiled proxy under keep-alive load and writes a flame graph (SVG) and a self-time table (markdown).
//
// Usage: npm run build && node bench/flamegraph.ts [--seconds 10] [--connections 50] [--path /1k]
// The proxy runs with `--cpu-prof` (through NODE_OPTIONS) behind one ingress listener in front of the
// bench's nginx upstream, autocannon loads it, and on exit V8 writes the profile this script renders.

import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { installCleanup, stopAll } from './support/children.ts'
import { freePorts } from './support/ports.ts'
import { ensureTools } from './support/tools.ts'
import { ingressSidecar, repoRoot, startOutrigger } from './systems/outrigger-process.ts'
import { startUpstream } from './systems/upstream.ts'

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: readonly number[]
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
}

/** A call-tree node with its sample counts. */
interface Frame {
  readonly name: string
  readonly where: string
  readonly group: Group
  readonly self: number
  total: number
  readonly children: Frame[]
}

type Group = 'outrigger' | 'undici' | 'other package' | 'node' | 'gc' | 'program' | 'idle'

const groupColor: Record<Group, string> = {
  outrigger: '#5fb35f',
  undici: '#5b8fd9',
  'other package': '#9b7fd4',
  node: '#e8a33d',
  gc: '#c96a6a',
  program: '#a0a0a0',
  idle: '#dddddd',
}

function groupOf(frame: CallFrame): Group {
  const { functionName, url } = frame
  if (functionName === '(garbage collector)') return 'gc'
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(program)' || functionName === '(root)') return 'program'
  if (url.includes('/node_modules/undici/')) return 'undici'
  if (url.includes('/node_modules/')) return 'other package'
  if (url.includes('/dist/') || url.includes('/src/')) return 'outrigger'
  return 'node'
}

function shortUrl(url: string): string {
  if (url === '') return ''
  const i = url.indexOf('/node_modules/')
  if (i !== -1) return url.slice(i + '/node_modules/'.length)
  const d = url.lastIndexOf('/dist/')
  if (d !== -1) return url.slice(d + 1)
  return url.replace(/^file:\/\//, '').replace(/^node:/, 'node:')
}

function buildTree(profile: CpuProfile): Frame {
  const self = new Map<number, number>()
  for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const build = (node: ProfileNode): Frame => {
    const cf = node.callFrame
    const frame: Frame = {
      name: cf.functionName || '(anonymous)',
      where: cf.url === '' ? '' : `${shortUrl(cf.url)}:${cf.lineNumber + 1}`,
      group: groupOf(cf),
      self: self.get(node.id) ?? 0,
      total: 0,
      children: [],
    }
    for (const childId of node.children ?? []) {
      const child = byId.get(childId)
      if (child !== undefined) frame.children.push(build(child))
    }
    frame.total = frame.self + frame.children.reduce((sum, c) => sum + c.total, 0)
    frame.children.sort((a, b) => b.total - a.total)
    return frame
  }
  return build(profile.nodes[0])
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** An icicle-style flame graph: the root on top, each child under its caller, width ∝ samples (idle left out). */
function renderSvg(root: Frame, title: string): string {
  const width = 1600
  const rowHeight = 16
  const busy = root.children.filter((c) => c.group !== 'idle')
  const total = busy.reduce((s, c) => s + c.total, 0)
  const rects: string[] = []
  let depthMax = 0
  const draw = (frame: Frame, x: number, depth: number): void => {
    const w = (frame.total / total) * width
    if (w < 0.5) return
    depthMax = Math.max(depthMax, depth)
    const y = 40 + depth * rowHeight
    const pct = ((100 * frame.total) / total).toFixed(2)
    const label = w > 40 ? escapeXml(frame.name.slice(0, Math.floor(w / 7))) : ''
    rects.push(
      `<g><title>${escapeXml(`${frame.name} ${frame.where}\n${frame.total} samples, ${pct}% (self ${frame.self})`)}</title>` +
        `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowHeight - 1}" fill="${groupColor[frame.group]}"/>` +
        (label === '' ? '' : `<text x="${(x + 3).toFixed(1)}" y="${y + 12}">${label}</text>`) +
        '</g>',
    )
    let cx = x
    for (const child of frame.children) {
      if (child.group === 'idle') continue
      draw(child, cx, depth + 1)
      cx += (child.total / total) * width
    }
  }
  let x = 0
  for (const child of busy) {
    draw(child, x, 0)
    x += (child.total / total) * width
  }
  const legend = (Object.keys(groupColor) as Group[])
    .filter((g) => g !== 'idle')
    .map(
      (g, i) =>
        `<rect x="${10 + i * 130}" y="22" width="10" height="10" fill="${groupColor[g]}"/><text x="${24 + i * 130}" y="31">${g}</text>`,
    )
    .join('')
  const height = 40 + (depthMax + 1) * rowHeight + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">
<text x="10" y="14" font-size="13">${escapeXml(title)}</text>${legend}
${rects.join('\n')}
</svg>
`
}

/** Self samples by function and by group, as markdown tables (idle excluded from the percentages). */
function renderTables(root: Frame): string {
  const byFunction = new Map<string, number>()
  const byGroup = new Map<Group, number>()
  let busy = 0
  const walk = (frame: Frame): void => {
    if (frame.group !== 'idle' && frame.self > 0) {
      busy += frame.self
      const key = `${frame.name} | ${frame.where} | ${frame.group}`
      byFunction.set(key, (byFunction.get(key) ?? 0) + frame.self)
      byGroup.set(frame.group, (byGroup.get(frame.group) ?? 0) + frame.self)
    }
    for (const c of frame.children) walk(c)
  }
  walk(root)
  const pct = (n: number): string => `${((100 * n) / busy).toFixed(1)}%`
  const groups = [...byGroup].sort((a, b) => b[1] - a[1])
  const functions = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)
  return [
    '| group | self time |',
    '|---|---|',
    ...groups.map(([g, n]) => `| ${g} | ${pct(n)} |`),
    '',
    '| function | where | group | self time |',
    '|---|---|---|---|',
    ...functions.map(([key, n]) => `| ${key} | ${pct(n)} |`),
  ].join('\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      path: { type: 'string', default: '/1k' },
    },
  })
  const seconds = Number(values.seconds)
  const connections = Number(values.connections)
  installCleanup()
  const { nginx } = ensureTools(['nginx'])
  const workDir = await mkdtemp(join(tmpdir(), 'outrigger-flame-'))
  const profileDir = join(workDir, 'profile')
  const upstream = await startUpstream(nginx, workDir)
  const [port] = await freePorts(1)
  // Inherited by the proxy process only through its environment; V8 writes the profile when it exits.
  process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${profileDir}`
  const proxy = await startOutrigger({
    name: 'outrigger',
    workDir,
    resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
  })
  delete process.env.NODE_OPTIONS
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${values.path}`,
    connections,
    duration: seconds,
  })
  await proxy.stop()
  await upstream.stop()
  const files = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile'))
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${profileDir}`)
  const profile = JSON.parse(await readFile(join(profileDir, files[0]), 'utf8')) as CpuProfile
  const root = buildTree(profile)
  const stamp = new Date().toISOString().slice(0, 16).replace('T', '-').replace(':', '')
  const command = `node bench/flamegraph.ts --seconds ${seconds} --connections ${connections} --path ${values.path}`
  const rps = Math.round(result['2xx'] / seconds)
  const title = `Outrigger ${values.path} keep-alive, ${connections} connections, ${rps} req/s, node ${process.version} (${command})`
  const base = join(repoRoot, 'bench', 'results', `flame-${stamp}`)
  await writeFile(`${base}.svg`, renderSvg(root, title))
  await writeFile(
    `${base}.md`,
    `# CPU profile of the proxy under load (${stamp})\n\nCommand: \`npm run build && ${command}\`\n\n` +
      `${rps} req/s through one ingress listener to nginx. Flame graph: [flame-${stamp}.svg](flame-${stamp}.svg) ` +
      '(hover a frame for its file, line and share).\n\n' +
      `${renderTables(root)}\n`,
  )
  process.stdout.write(`wrote ${base}.svg and ${base}.md\n`)
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  })
  .finally(() => stopAll())
