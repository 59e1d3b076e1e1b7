// Workload SPIFFE IDs in Istio's form, `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`, checked as the SPIFFE spec and Istio read them.

/** A SPIFFE ID that is not a valid Istio workload identity; the message says why. */
export class SpiffeIdError extends Error {
  readonly code = 'SPIFFE_ID_INVALID'
}

/** The parts of an Istio workload SPIFFE ID. */
export interface WorkloadSpiffeId {
  readonly trustDomain: string
  readonly namespace: string
  readonly serviceAccount: string
  /** The whole ID, `spiffe://…`. */
  readonly uri: string
}

/** SPIFFE-ID spec §2.1: a trust domain is lowercase letters, digits, `.`, `-` and `_`. */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/
/** SPIFFE-ID spec §2.2: a path segment is letters, digits, `.`, `-` and `_`, and not `.` or `..`. */
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/
/** The SPIFFE spec caps an ID (as a URI SAN) at 2048 bytes. */
const MAX_LENGTH = 2048

/**
 * Parses `text` as an Istio workload identity (istio/istio pkg/spiffe: `spiffe://<td>/ns/<ns>/sa/<sa>`);
 * throws a SpiffeIdError naming the first thing wrong.
 */
export function parseWorkloadSpiffeId(text: string): WorkloadSpiffeId {
  const fail = (reason: string): SpiffeIdError => new SpiffeIdError(`invalid SPIFFE ID '${text}': ${reason}`)
  if (text.length > MAX_LENGTH) throw fail(`longer than ${MAX_LENGTH} characters`)
  if (!text.startsWith('spiffe://')) throw fail("must start with 'spiffe://'")
  const rest = text.slice('spiffe://'.length)
  const slash = rest.indexOf('/')
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash)
  if (trustDomain === '') throw fail('the trust domain is empty')
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw fail(`trust domain '${trustDomain}' may hold only lowercase letters, digits, '.', '-' and '_'`)
  }
  const segments = slash === -1 ? [] : rest.slice(slash + 1).split('/')
  for (const segment of segments) {
    if (segment === '') throw fail('the path has an empty segment')
    if (segment === '.' || segment === '..') throw fail(`the path may not hold '${segment}'`)
    if (!PATH_SEGMENT.test(segment)) {
      throw fail(`path segment '${segment}' may hold only letters, digits, '.', '-' and '_'`)
    }
  }
  if (segments.length !== 4 || segments[0] !== 'ns' || segments[2] !== 'sa') {
    throw fail("Istio's workload form is spiffe://<trust domain>/ns/<namespace>/sa/<service account>")
  }
  return { trustDomain, namespace: segments[1], serviceAccount: segments[3], uri: text }
}

/** The SPIFFE ID Istio gives a workload; throws a SpiffeIdError when a part is not valid. */
export function workloadSpiffeId(
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): WorkloadSpiffeId {
  return parseWorkloadSpiffeId(`spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`)
}
