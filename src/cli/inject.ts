// `outrigger inject -f <file|->`: prints the manifests with the Outrigger sidecar added, as `istioctl kube-inject`; `file:line: reason` on stderr and exit 1 on errors.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { formatMessage } from '../config/messages.ts'
import { injectManifests } from '../inject/inject-manifests.ts'

/** The image both added containers run unless `--image` names another (a local build: `podman build -t outrigger`). */
export function defaultImage(version: string): string {
  return `localhost/outrigger:${version}`
}

export function injectUsage(version: string): string {
  return `usage:
  outrigger inject -f <manifests.yaml | -> [--image <image>]
      prints the manifests with the sidecar added (the capture init container istio-init and the native
      sidecar istio-proxy); --image defaults to ${defaultImage(version)}
Exit codes: 0 done, 1 a manifest is malformed (file:line on stderr), 2 bad arguments.
`
}

export function inject(
  args: readonly string[],
  version: string,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): number {
  let values: { filename?: string; image?: string }
  try {
    ;({ values } = parseArgs({
      args: [...args],
      options: { filename: { type: 'string', short: 'f' }, image: { type: 'string' } },
    }))
  } catch (error) {
    err.write(`${(error as Error).message}\n${injectUsage(version)}`)
    return 2
  }
  if (values.filename === undefined) {
    err.write(`inject needs -f <file> (or -f - for stdin)\n${injectUsage(version)}`)
    return 2
  }
  const file = values.filename === '-' ? '<stdin>' : values.filename
  let text: string
  try {
    text = readFileSync(values.filename === '-' ? 0 : values.filename, 'utf8')
  } catch (error) {
    err.write(`${file}: ${(error as Error).message}\n`)
    return 1
  }
  const result = injectManifests(text, file, { image: values.image ?? defaultImage(version) })
  for (const message of result.messages) err.write(`${formatMessage(message)}\n`)
  if (result.output === undefined) return 1
  out.write(result.output)
  return 0
}
