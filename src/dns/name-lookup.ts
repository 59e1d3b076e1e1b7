// Answers a question from the DNS table as Istio's agent does (pkg/dns/client/dns.go lookupHost): exact names, wildcards, and the first search domain's CNAME.

import type { Answer } from 'dns-packet'
import type { DnsAddresses, DnsTable } from '../config/compile/dns-table.ts'

/** Istio keeps the TTL low so that a client that honours it soon sees a changed address (defaultTTLInSeconds). */
export const answerTtl = 30

/**
 * The records that answer `qtype` for `name` (as asked: any case, with or without the trailing dot), or
 * undefined when the table does not know the name or the type is neither A nor AAAA: the query then goes
 * upstream. A known name without an address of the asked family answers with no records (NOERROR, not
 * NXDOMAIN, which would make a client asking A and AAAA at once give up on the name: istio/istio#31250).
 */
export function lookupName(
  table: DnsTable,
  search: readonly string[],
  qtype: string,
  name: string,
): Answer[] | undefined {
  if (qtype !== 'A' && qtype !== 'AAAA') return undefined
  const question = name.endsWith('.') ? name.slice(0, -1) : name
  const host = question.toLowerCase()
  const exact = table.names.get(host)
  if (exact !== undefined) return records(qtype, question, exact)
  const wildcard = matchWildcard(table, host)
  if (wildcard !== undefined) return records(qtype, question, wildcard)
  // The app's resolver tries its first search domain first (`reviews.default.svc.cluster.local.<ns>.svc.cluster.local`):
  // a CNAME to the real host, and its addresses, spare it the rest of the search (Istio's buildDNSAnswers).
  const first = search[0]
  if (first !== undefined && host.endsWith(`.${first}`)) {
    const target = host.slice(0, -first.length - 1)
    const addresses = table.names.get(target)
    if (addresses !== undefined) {
      const cname: Answer = { type: 'CNAME', name: question, ttl: answerTtl, data: target }
      return [cname, ...records(qtype, target, addresses)]
    }
  }
  return undefined
}

/** The most specific wildcard host covering `host`: `*.b.example.com` before `*.example.com`. */
function matchWildcard(table: DnsTable, host: string): DnsAddresses | undefined {
  if (table.wildcards.size === 0) return undefined
  for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
    const found = table.wildcards.get(host.slice(dot + 1))
    if (found !== undefined) return found
  }
  return undefined
}

function records(qtype: 'A' | 'AAAA', name: string, addresses: DnsAddresses): Answer[] {
  const list = qtype === 'A' ? addresses.v4 : addresses.v6
  const out: Answer[] = list.map((data) => ({ type: qtype, name, ttl: answerTtl, data }))
  // Rotated per answer, as kube-dns and Istio's roundRobinResponse do, so clients spread over the addresses.
  if (out.length > 1) {
    const start = Math.floor(Math.random() * out.length)
    return out.slice(start).concat(out.slice(0, start))
  }
  return out
}
