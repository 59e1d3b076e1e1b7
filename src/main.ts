// The `outrigger` command line: run | validate | ca | version.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { run } from './cli/run.ts'

const usage = `usage:
  outrigger run --config <bootstrap.yaml> [--concurrency <workers>]
  outrigger validate <bootstrap.yaml | resource files or directories…>
  outrigger ca init --out <dir> | ca issue --ca <dir> --spiffe <id> --out <dir> [--ttl 24h]
  outrigger version
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'run': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string', short: 'c' }, concurrency: { type: 'string' } },
      })
      if (values.config === undefined) {
        process.stderr.write(`run needs --config <bootstrap.yaml>\n${usage}`)
        return 2
      }
      const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency)
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
        process.stderr.write(`--concurrency must be a whole number ≥ 1\n`)
        return 2
      }
      const code = await run(values.config, concurrency)
      // Drained: close whatever keep-alive timers and sockets remain.
      return process.exit(code)
    }
    case 'validate': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true })
      if (positionals.length === 0) {
        process.stderr.write(`validate needs at least one path\n${usage}`)
        return 2
      }
      const { validate } = await import('./cli/validate.ts')
      return validate(positionals)
    }
    case 'ca': {
      const { ca } = await import('./cli/ca.ts')
      return ca(rest)
    }
    case 'version':
    case '--version':
      process.stdout.write(`outrigger ${version()} (node ${process.version})\n`)
      return 0
    default:
      process.stderr.write(usage)
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`outrigger: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  },
)
