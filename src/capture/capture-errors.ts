// Why applying capture failed, in words: no CAP_NET_ADMIN, no iptables, or a kernel module the rules need.

import { readFileSync } from 'node:fs'

/** A capture failure the CLI prints as is (exit 1): the message already says what to do. */
export class CaptureError extends Error {
  override name = 'CaptureError'
}

/** Kernel modules behind each iptables target, match and table our rules use. */
const TARGET_MODULES: Readonly<Record<string, string>> = {
  REDIRECT: 'xt_REDIRECT (with nf_nat)',
  TPROXY: 'xt_TPROXY (with nf_tproxy_ipv4 / nf_tproxy_ipv6)',
  CT: 'xt_CT',
  MARK: 'xt_mark',
  CONNMARK: 'xt_connmark',
}
const MATCH_MODULES: Readonly<Record<string, string>> = {
  owner: 'xt_owner',
  multiport: 'xt_multiport',
  conntrack: 'xt_conntrack',
  mark: 'xt_mark',
  connmark: 'xt_connmark',
  comment: 'xt_comment',
}
const TABLE_MODULES: Readonly<Record<string, string>> = {
  nat: 'iptable_nat / ip6table_nat (nft_chain_nat with iptables-nft)',
  mangle: 'iptable_mangle / ip6table_mangle',
  raw: 'iptable_raw / ip6table_raw',
}

const CAP_NET_ADMIN = 12

/** Whether this process holds CAP_NET_ADMIN (root normally does), read from /proc/self/status. */
export function hasNetAdmin(status = '/proc/self/status'): boolean {
  try {
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(status, 'utf8'))
    if (match === null) return process.getuid?.() === 0
    return ((BigInt(`0x${match[1]}`) >> BigInt(CAP_NET_ADMIN)) & 1n) === 1n
  } catch {
    return process.getuid?.() === 0
  }
}

export function notPermitted(what: string): CaptureError {
  const uid = process.getuid?.()
  return new CaptureError(
    `${what} needs root or CAP_NET_ADMIN in the pod's network namespace (running as uid ${uid}); ` +
      'run it as root, or as the init container with capabilities NET_ADMIN and NET_RAW',
  )
}

function modulesOfRule(rule: string): string[] {
  const words = rule.split(/\s+/)
  const modules: string[] = []
  for (let i = 0; i < words.length - 1; i++) {
    const next = words[i + 1] ?? ''
    if (words[i] === '-j' && TARGET_MODULES[next] !== undefined)
      modules.push(`${next} target: ${TARGET_MODULES[next]}`)
    if (words[i] === '-m' && MATCH_MODULES[next] !== undefined)
      modules.push(`${next} match: ${MATCH_MODULES[next]}`)
  }
  return modules
}

/**
 * Turns iptables-restore's failure into a message naming what is missing: permission, a table, a target
 * or match extension (and its kernel module), or the rule the kernel refused.
 */
export function explainRestoreFailure(command: string, stderr: string, input: string): CaptureError {
  const text = stderr.trim()
  if (/Permission denied|Operation not permitted|you must be root/i.test(text)) {
    return notPermitted(`${command} (outrigger capture)`)
  }
  const extension = /Couldn't load (target|match) `([^']+)'|Extension (\S+) revision \d+ not supported/.exec(
    text,
  )
  if (extension !== null) {
    const name = extension[2] ?? extension[3] ?? ''
    const kind = extension[1] ?? (TARGET_MODULES[name] !== undefined ? 'target' : 'match')
    const module = kind === 'target' ? TARGET_MODULES[name] : MATCH_MODULES[name]
    return new CaptureError(
      `${command}: the ${kind} ${name} is not available${module === undefined ? '' : `: the kernel needs module ${module}`}` +
        ` (load it with modprobe on the node, or choose a mode that does not need it)\n${text}`,
    )
  }
  const table = /table [`'"]?(nat|mangle|raw)['"]?.*(does not exist|insmod)/i.exec(text)
  if (table !== null) {
    const name = table[1] ?? ''
    return new CaptureError(
      `${command}: the kernel has no ${name} table: it needs module ${TABLE_MODULES[name]}\n${text}`,
    )
  }
  const line = /(?:line:? |line )(\d+)/i.exec(text)
  if (line !== null) {
    const rule = input.split('\n')[Number(line[1]) - 1] ?? ''
    const modules = modulesOfRule(rule)
    const hint = modules.length === 0 ? '' : `; the kernel may lack a module it uses: ${modules.join(', ')}`
    return new CaptureError(`${command} refused the rule \`${rule}\`${hint}\n${text}`)
  }
  return new CaptureError(`${command} failed: ${text}`)
}
