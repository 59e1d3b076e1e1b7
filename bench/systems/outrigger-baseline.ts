// Outrigger built from another git revision (--baseline <rev>), run like `outrigger`, to measure a change in one run.

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { freePorts } from '../support/ports.ts'
import { ingressSidecar, repoRoot, startOutrigger } from './outrigger-process.ts'
import type { SystemDef } from './system.ts'

/** Extracts `rev`'s src/ into `dir` and compiles it with this checkout's TypeScript; returns its main.js. */
export function buildRevision(rev: string, dir: string): string {
  mkdirSync(dir, { recursive: true })
  const archive = execFileSync('git', ['-C', repoRoot, 'archive', rev, 'src', 'package.json'], {
    maxBuffer: 64 * 1024 * 1024,
  })
  execFileSync('tar', ['-x', '-C', dir], { input: archive })
  if (!existsSync(join(dir, 'node_modules')))
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'))
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  execFileSync(
    process.execPath,
    [
      tsc,
      '--noCheck',
      '--outDir',
      join(dir, 'dist'),
      '--rootDir',
      join(dir, 'src'),
      ...tsconfigFlags(),
      ...sources(dir),
    ],
    { stdio: 'inherit' },
  )
  return join(dir, 'dist', 'main.js')
}

/** The build settings of tsconfig.build.json, as flags (tsc cannot combine -p with a file list). */
function tsconfigFlags(): string[] {
  return [
    '--target',
    'es2024',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--rewriteRelativeImportExtensions',
    '--allowImportingTsExtensions',
    '--erasableSyntaxOnly',
    '--verbatimModuleSyntax',
    '--skipLibCheck',
    '--types',
    'node',
  ]
}

function sources(dir: string): string[] {
  const out = execFileSync('find', [join(dir, 'src'), '-name', '*.ts', '!', '-name', '*.test.ts'], {
    encoding: 'utf8',
  })
  return out.split('\n').filter((f) => f !== '' && !f.endsWith('test-support.ts'))
}

/** The abbreviated commit `rev` names. */
export function shortCommit(rev: string): string {
  return execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', rev], { encoding: 'utf8' }).trim()
}

export function outriggerBaseline(rev: string): SystemDef {
  const short = rev.length > 12 ? rev.slice(0, 12) : rev
  // Built on the first start only: bench/paired.ts starts it afresh in every process group.
  const builds = new Map<string, { commit: string; mainScript: string }>()
  return {
    name: 'outrigger-baseline',
    label: `Outrigger at ${short}`,
    async start(ctx) {
      let build = builds.get(ctx.workDir)
      if (build === undefined) {
        const commit = shortCommit(rev)
        build = { commit, mainScript: buildRevision(rev, join(ctx.workDir, `baseline-${commit}`)) }
        builds.set(ctx.workDir, build)
      }
      const { commit, mainScript } = build
      const [port] = await freePorts(1)
      const proxy = await startOutrigger({
        name: 'outrigger-baseline',
        workDir: ctx.workDir,
        mainScript,
        resources: { 'sidecar.yaml': ingressSidecar(port, ctx.upstreamPort) },
      })
      return {
        name: 'outrigger-baseline',
        target: { port },
        pids: [proxy.child.pid],
        detail: `Outrigger built from ${rev} (${commit}), ingress listener, node ${process.version}`,
        stop: () => proxy.stop(),
      }
    },
  }
}
