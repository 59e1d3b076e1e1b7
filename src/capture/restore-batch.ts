// iptables-restore input that replaces whatever capture rules a table holds with new ones, in one commit per table.

import { OUR_CHAINS, type Rule, type Table } from './capture-rules.ts'

/** Marks our rules in the built-in chains, so `remove` deletes exactly them and nothing of anyone else's. */
export const RULE_TAG = 'outrigger-capture'

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])

/** Our rules and chains as one table of `iptables-save` shows them. */
export interface InstalledTable {
  /** Our chains (Istio's ISTIO_* names) that exist in the table. */
  readonly chains: Set<string>
  /** Our rules in built-in chains, as `-A` lines: the chain and its spec as iptables-save prints them. */
  readonly builtinRules: string[]
  /** How many rules our chains hold (so a test or `remove` can say what it found). */
  ruleCount: number
}

function jumpTarget(words: readonly string[]): string | undefined {
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === '-j' || words[i] === '-g' || words[i] === '--jump' || words[i] === '--goto')
      return words[i + 1]
  }
  return undefined
}

/** Finds our chains and our built-in-chain rules in `iptables-save` output. */
export function installedCapture(saveText: string): Map<Table, InstalledTable> {
  const tables = new Map<Table, InstalledTable>()
  let current: InstalledTable | undefined
  for (const line of saveText.split('\n')) {
    if (line.startsWith('*')) {
      const name = line.slice(1).trim()
      current =
        name === 'nat' || name === 'mangle' || name === 'raw'
          ? { chains: new Set(), builtinRules: [], ruleCount: 0 }
          : undefined
      if (current !== undefined) tables.set(name as Table, current)
      continue
    }
    if (current === undefined) continue
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0] ?? ''
      if (OUR_CHAINS.has(chain)) current.chains.add(chain)
      continue
    }
    if (!line.startsWith('-A ')) continue
    const words = line.split(' ')
    const chain = words[1] ?? ''
    if (OUR_CHAINS.has(chain)) {
      current.ruleCount++
      continue
    }
    if (!BUILTIN_CHAINS.has(chain)) continue
    const target = jumpTarget(words)
    const tagged = line.includes(`--comment ${RULE_TAG}`) || line.includes(`--comment "${RULE_TAG}"`)
    if (tagged || (target !== undefined && OUR_CHAINS.has(target))) current.builtinRules.push(line)
  }
  for (const [name, table] of tables) {
    if (table.chains.size === 0 && table.builtinRules.length === 0) tables.delete(name)
  }
  return tables
}

function tagged(rule: Rule): readonly string[] {
  if (!BUILTIN_CHAINS.has(rule.chain)) return rule.args
  const jump = rule.args.indexOf('-j')
  const at = jump === -1 ? rule.args.length : jump
  return [...rule.args.slice(0, at), '-m', 'comment', '--comment', RULE_TAG, ...rule.args.slice(at)]
}

/** The `-A`/`-I` line of a rule, with our tag when it lives in a built-in chain. */
export function ruleLine(rule: Rule): string {
  const head = rule.insertAt === undefined ? `-A ${rule.chain}` : `-I ${rule.chain} ${rule.insertAt}`
  return `${head} ${tagged(rule).join(' ')}`
}

function tablesInOrder(rules: readonly Rule[]): Table[] {
  const order: Table[] = []
  for (const rule of rules) if (!order.includes(rule.table)) order.push(rule.table)
  return order
}

function chainsOf(rules: readonly Rule[], table: Table): string[] {
  const chains: string[] = []
  for (const rule of rules) {
    if (rule.table !== table) continue
    if (!BUILTIN_CHAINS.has(rule.chain) && !chains.includes(rule.chain)) chains.push(rule.chain)
  }
  return chains
}

/**
 * iptables-restore input (for `--noflush`): per table, our old chains are flushed, our old built-in rules
 * deleted, our old chains that the new rules do not use deleted, then the new rules added, in one COMMIT.
 * With no new rules it removes ours; with no old ones it is a plain install.
 */
export function restoreBatch(installed: ReadonlyMap<Table, InstalledTable>, rules: readonly Rule[]): string {
  const tables = tablesInOrder(rules)
  for (const table of installed.keys()) if (!tables.includes(table)) tables.push(table)
  const out: string[] = []
  for (const table of tables) {
    const old = installed.get(table)
    const fresh = chainsOf(rules, table)
    const declared = [...fresh]
    for (const chain of old?.chains ?? []) if (!declared.includes(chain)) declared.push(chain)
    out.push(`*${table}`)
    // Declaring an existing chain under --noflush flushes it, which also drops its jumps to our other chains.
    for (const chain of declared) out.push(`:${chain} - [0:0]`)
    for (const line of old?.builtinRules ?? []) out.push(`-D ${line.slice(3)}`)
    for (const chain of old?.chains ?? []) if (!fresh.includes(chain)) out.push(`-X ${chain}`)
    for (const rule of rules) if (rule.table === table) out.push(ruleLine(rule))
    out.push('COMMIT')
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`
}
