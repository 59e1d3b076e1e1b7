// Istio's rules for host names: DNS-1123 labels, a wildcard allowed only as the first label, no all-numeric TLD.

const DNS_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$/
const MAX_NAME_LENGTH = 255
const MAX_LABEL_LENGTH = 63

export function isDnsLabel(label: string): boolean {
  return label.length <= MAX_LABEL_LENGTH && DNS_LABEL.test(label)
}

/** Why `host` is not a valid (optionally `*`-prefixed) domain name, or undefined when it is. */
export function wildcardDomainProblem(host: string): string | undefined {
  if (host.length === 0) return 'empty domain name not allowed'
  if (host.length > MAX_NAME_LENGTH) return `domain name '${host}' too long (max ${MAX_NAME_LENGTH})`
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.')
  const [first, ...rest] = labels
  if (first.length > MAX_LABEL_LENGTH || !WILDCARD_LABEL.test(first)) {
    return `domain name '${host}' invalid (label '${first}' invalid)`
  }
  for (const label of rest) {
    if (!isDnsLabel(label)) return `domain name '${host}' invalid (label '${label}' invalid)`
  }
  const topLevel = labels[labels.length - 1]
  if (labels.length > 1 && /^[0-9]+$/.test(topLevel)) {
    return `domain name '${host}' invalid (top level domain '${topLevel}' cannot be all-numeric)`
  }
  return undefined
}
