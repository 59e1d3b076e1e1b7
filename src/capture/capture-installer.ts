// Applies and removes capture in the current network namespace: iptables-restore batches, TPROXY's policy routing.

import { spawnSync } from 'node:child_process'
import type { CaptureConfig } from './capture-config.ts'
import { CaptureError, explainRestoreFailure, hasNetAdmin, notPermitted } from './capture-errors.ts'
import { readCaptureHost } from './capture-host.ts'
import { buildCaptureRules, type CaptureRules, CHAINS, type Rule, type Table } from './capture-rules.ts'
import { type InstalledTable, installedCapture, restoreBatch } from './restore-batch.ts'

type Family = 'v4' | 'v6'

const TOOLS = {
  v4: { save: 'iptables-save', restore: 'iptables-restore', ip: [] as string[], label: 'IPv4' },
  v6: { save: 'ip6tables-save', restore: 'ip6tables-restore', ip: ['-6'], label: 'IPv6' },
} as const

/** The IPv6 inbound passthrough source istio-iptables adds to lo (tools/common/tproxy configureIPv6Addresses). */
const PASSTHROUGH_V6_ADDRESS = '::6/128'

interface CommandResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
  readonly missing: boolean
}

function runCommand(file: string, args: readonly string[], input?: string): CommandResult {
  const result = spawnSync(file, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] })
  const missing = (result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', missing }
}

function ip(args: readonly string[]): CommandResult {
  const result = runCommand('ip', args)
  if (result.missing)
    throw new CaptureError('ip (iproute2) is not installed: TPROXY capture needs it for its policy routing')
  return result
}

/** Our rules and chains in one family, or undefined when its iptables is not installed. */
function readInstalled(family: Family): Map<Table, InstalledTable> | undefined {
  const tool = TOOLS[family]
  const result = runCommand(tool.save, [])
  if (result.missing) return undefined
  if (result.status !== 0) throw explainRestoreFailure(tool.save, result.stderr, '')
  return installedCapture(result.stdout)
}

function applyBatch(family: Family, batch: string): void {
  if (batch === '') return
  const tool = TOOLS[family]
  const result = runCommand(tool.restore, ['--noflush'], batch)
  if (result.missing) throw new CaptureError(`${tool.restore} is not installed: install the iptables package`)
  if (result.status !== 0) throw explainRestoreFailure(tool.restore, result.stderr, batch)
}

/** The TPROXY mark our ISTIO_DIVERT chain sets, if one is installed (`--set-xmark 0x539/0xffffffff`). */
function installedTproxyMark(family: Family): number | undefined {
  const result = runCommand(TOOLS[family].save, ['-t', 'mangle'])
  if (result.status !== 0) return undefined
  const match = new RegExp(`^-A ${CHAINS.divert} .*--set-x?mark (0x[0-9a-f]+|\\d+)`, 'm').exec(result.stdout)
  return match === null ? undefined : Number(match[1])
}

interface PolicyRule {
  readonly priority?: number
  readonly fwmark?: string
  readonly fwmask?: string
  readonly table?: string
}

/** Deletes the `fwmark <mark> lookup <table>` rules and their `local default dev lo` routes (TPROXY's routing). */
function removeTproxyRouting(family: Family, mark: number): void {
  const listed = ip([...TOOLS[family].ip, '-j', 'rule', 'show'])
  if (listed.status !== 0) return
  const rules = JSON.parse(listed.stdout || '[]') as PolicyRule[]
  for (const rule of rules) {
    if (rule.fwmark === undefined || Number(rule.fwmark) !== mark || rule.table === undefined) continue
    if (rule.fwmask !== undefined && Number(rule.fwmask) !== 0xffffffff) continue
    ip([
      ...TOOLS[family].ip,
      'rule',
      'del',
      'priority',
      String(rule.priority),
      'fwmark',
      String(mark),
      'lookup',
      rule.table,
    ])
    ip([...TOOLS[family].ip, 'route', 'del', 'local', 'default', 'dev', 'lo', 'table', rule.table])
  }
}

/** `ip rule add fwmark <mark> lookup <table>` and `ip route add local default dev lo table <table>` (tproxy/run_linux.go). */
function addTproxyRouting(family: Family, mark: number, table: number): void {
  const v = TOOLS[family].ip
  const rule = ip([...v, 'rule', 'add', 'fwmark', String(mark), 'lookup', String(table)])
  if (rule.status !== 0) throw routingFailure(`ip ${[...v, 'rule', 'add'].join(' ')}`, rule.stderr)
  const route = ip([...v, 'route', 'replace', 'local', 'default', 'dev', 'lo', 'table', String(table)])
  if (route.status !== 0) throw routingFailure(`ip ${[...v, 'route', 'replace'].join(' ')}`, route.stderr)
}

function routingFailure(command: string, stderr: string): CaptureError {
  if (/Operation not permitted|Permission denied/i.test(stderr)) return notPermitted(command)
  return new CaptureError(`${command} failed: ${stderr.trim()}`)
}

function tproxyRouting(rules: readonly Rule[]): boolean {
  return rules.some((rule) => rule.chain === CHAINS.divert)
}

/** The text `--dry-run` prints: each family's iptables-restore input, and TPROXY's routing commands. */
export function describeCapture(config: CaptureConfig, rules: CaptureRules): string {
  const out: string[] = []
  for (const family of ['v4', 'v6'] as const) {
    const list = rules[family]
    if (list.length === 0) continue
    out.push(`# ${TOOLS[family].restore} --noflush (${TOOLS[family].label})`)
    out.push(restoreBatch(new Map(), list).trimEnd())
    if (tproxyRouting(list)) {
      const v = TOOLS[family].ip.length === 0 ? '' : '-6 '
      out.push(`# ip ${v}rule add fwmark ${config.tproxyMark} lookup ${config.tproxyRouteTable}`)
      out.push(`# ip ${v}route add local default dev lo table ${config.tproxyRouteTable}`)
    }
    if (family === 'v6') out.push(`# ip -6 addr add ${PASSTHROUGH_V6_ADDRESS} dev lo`)
  }
  return `${out.join('\n')}\n`
}

function requireNetAdmin(what: string): void {
  if (!hasNetAdmin()) throw notPermitted(what)
}

/** Replaces one family's capture (ours only) with `rules`, and its TPROXY routing likewise. */
function replaceFamily(family: Family, rules: readonly Rule[], config: CaptureConfig | undefined): boolean {
  const installed = readInstalled(family)
  if (installed === undefined) {
    if (rules.length === 0) return false
    throw new CaptureError(`${TOOLS[family].save} is not installed: install the iptables package`)
  }
  const oldMark = installedTproxyMark(family)
  applyBatch(family, restoreBatch(installed, rules))
  if (oldMark !== undefined) removeTproxyRouting(family, oldMark)
  if (config !== undefined && tproxyRouting(rules))
    addTproxyRouting(family, config.tproxyMark, config.tproxyRouteTable)
  return installed.size > 0
}

function removePassthroughAddress(): void {
  runCommand('ip', ['-6', 'addr', 'del', PASSTHROUGH_V6_ADDRESS, 'dev', 'lo'])
}

/**
 * Installs capture as istio-iptables does; ours from an earlier install are replaced in the same commit
 * per table, so installing twice leaves one copy and another set of flags replaces the first.
 */
export function installCapture(config: CaptureConfig): CaptureRules {
  const host = readCaptureHost(config)
  const rules = buildCaptureRules(config, host)
  if (config.dryRun) return rules
  requireNetAdmin('outrigger capture install')
  replaceFamily('v4', rules.v4, config)
  const hadV6 = replaceFamily('v6', rules.v6, config)
  if (host.ipv6) {
    const added = ip(['-6', 'addr', 'add', PASSTHROUGH_V6_ADDRESS, 'dev', 'lo'])
    if (added.status !== 0 && !/File exists|already assigned/i.test(added.stderr)) {
      throw routingFailure('ip -6 addr add ::6/128 dev lo', added.stderr)
    }
  } else if (hadV6) {
    removePassthroughAddress()
  }
  return rules
}

/** Removes exactly what install added: our chains, our rules in built-in chains, TPROXY's ip rules and routes, ::6. */
export function removeCapture(): { removed: boolean } {
  requireNetAdmin('outrigger capture remove')
  const v4 = replaceFamily('v4', [], undefined)
  const v6 = replaceFamily('v6', [], undefined)
  if (v6) removePassthroughAddress()
  return { removed: v4 || v6 }
}
