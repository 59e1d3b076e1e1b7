// The `outrigger` command line: run | validate | ca | capture | authz check | inject | stat | top | tap | explain | version.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { applyNodeSettings } from './cli/node-settings.ts'
import { recordModuleLoads } from './telemetry/loaded-modules.ts'

// Before the proxy's modules load, so admin GET /modules can list every one (a debug aid: which features loaded).
if (process.env.OUTRIGGER_RECORD_MODULES === '1') recordModuleLoads()

const usage = `usage:
  outrigger run --config <bootstrap.yaml> [--concurrency <workers>]
  outrigger validate <bootstrap.yaml | resource files or directories…>
  outrigger ca init --out <dir> | ca issue --ca <dir> --spiffe <id> --out <dir> [--ttl 24h]
  outrigger capture install [istio-iptables flags] | capture remove     (outrigger capture --help)
  outrigger authz check --config <bootstrap.yaml> [--method GET] [--path /] [--host h] [--port N]
      [--principal spiffe://…] [--namespace ns] [--request-principal iss/sub] [--header name:value]…
      [--source-ip ip] [--sni name] [--tcp]     (exit 0 allowed, 1 denied, 2 usage or config error)
  outrigger inject -f <manifests.yaml | -> [--image <image>]
  outrigger stat [--by service|route|cluster|listener] [--window 10s] [-o json] [--admin host:port]
  outrigger top [--admin host:port] [--window 10s] [--limit N]     (the busiest paths, live; q quits)
  outrigger tap [--authority host[:port]] [--path PREFIX] [--method M] [--status 2xx|4xx|5xx|CODE]
      [--direction inbound|outbound] [--max N] [-o text|json] [--admin host:port]
  outrigger explain --authority <host[:port]> [--path /] [--method GET] [--header name:value]…
      [--source-principal spiffe://…] [--port N] [--direction outbound|inbound] [-o json]
      [--admin host:port | --config <bootstrap.yaml> | --resources <files or dirs>…]     (outrigger explain --help)
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
      // The proxy's V8 settings, however node was started (re-executes node when one is missing), before
      // the proxy's modules load.
      applyNodeSettings()
      const { run } = await import('./cli/run.ts')
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
    case 'capture': {
      const { capture } = await import('./cli/capture.ts')
      return capture(rest)
    }
    case 'authz': {
      const [sub, ...args] = rest
      const { values } = parseArgs({
        args,
        options: {
          config: { type: 'string', short: 'c' },
          method: { type: 'string' },
          path: { type: 'string' },
          host: { type: 'string' },
          port: { type: 'string' },
          principal: { type: 'string' },
          namespace: { type: 'string' },
          'request-principal': { type: 'string' },
          header: { type: 'string', multiple: true },
          'source-ip': { type: 'string' },
          'destination-ip': { type: 'string' },
          sni: { type: 'string' },
          tcp: { type: 'boolean' },
        },
      })
      if (sub !== 'check' || values.config === undefined) {
        process.stderr.write(`authz check needs --config <bootstrap.yaml>\n${usage}`)
        return 2
      }
      const { authzCheck } = await import('./cli/authz-check.ts')
      return authzCheck(values.config, {
        method: values.method,
        path: values.path,
        host: values.host,
        port: values.port === undefined ? undefined : Number(values.port),
        principal: values.principal,
        namespace: values.namespace,
        requestPrincipal: values['request-principal'],
        headers: values.header,
        sourceIp: values['source-ip'],
        destinationIp: values['destination-ip'],
        sni: values.sni,
        tcp: values.tcp,
      })
    }
    case 'explain': {
      const { explainCommand } = await import('./cli/explain.ts')
      return explainCommand(rest)
    }
    case 'inject': {
      const { inject } = await import('./cli/inject.ts')
      return inject(rest, version())
    }
    case 'stat': {
      const { stat } = await import('./cli/stat.ts')
      return stat(rest)
    }
    case 'top': {
      const { top } = await import('./cli/top.ts')
      return top(rest)
    }
    case 'tap': {
      const { tap } = await import('./cli/tap.ts')
      return tap(rest)
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
