// Finds the native tools the bench compares against (nginx, haproxy) and installs them from Debian when missing.

import { execFileSync, spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'

const SEARCH = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin']

/** The absolute path of `name`, or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH]
  for (const dir of dirs) {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK)
      return `${dir}/${name}`
    } catch {
      // not here
    }
  }
  return undefined
}

/** Paths of the Debian packages' binaries, running `apt-get install -y` (and once `apt-get update`) if needed. */
export function ensureTools(names: readonly string[]): Record<string, string> {
  installPackages(names.filter((n) => which(n) === undefined))
  const paths: Record<string, string> = {}
  for (const name of names) {
    const path = which(name)
    if (path === undefined) throw new Error(`${name} not found after installing`)
    paths[name] = path
  }
  return paths
}

/** The path of `binary`, installing the Debian `pkg` that ships it when missing. */
export function ensureBinary(binary: string, pkg: string): string {
  if (which(binary) === undefined) installPackages([pkg])
  const path = which(binary)
  if (path === undefined) throw new Error(`${binary} not found after installing ${pkg}`)
  return path
}

function installPackages(missing: readonly string[]): void {
  if (missing.length > 0) {
    process.stderr.write(`bench: installing ${missing.join(' ')} with apt-get\n`)
    const install = (): boolean =>
      spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      }).status === 0
    if (!install()) {
      spawnSync('apt-get', ['update'], { stdio: 'ignore' })
      if (!install()) throw new Error(`apt-get install -y ${missing.join(' ')} failed (are we root?)`)
    }
  }
}

/** The first line a tool prints for its version flag (nginx writes it to stderr). */
export function toolVersion(path: string, flag: string): string {
  const res = spawnSync(path, [flag], { encoding: 'utf8' })
  return `${res.stdout ?? ''}${res.stderr ?? ''}`.split('\n')[0].trim()
}

/** The current git commit of the repository, or 'unknown'. */
export function gitCommit(cwd: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd,
      encoding: 'utf8',
    }).trim()
    return dirty === '' ? head : `${head}+dirty-src`
  } catch {
    return 'unknown'
  }
}
