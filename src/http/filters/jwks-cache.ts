// The key sets of the JWT rules: inline ones read once, remote ones fetched ahead, refreshed on a timer, and kept when a refresh fails.

import type { createLocalJWKSet, JSONWebKeySet } from 'jose'
import type { JwksSpec, JwtRuleModel, RequestAuthenticationModel } from '../../config/jwt-policy.ts'
import { log } from '../../telemetry/log.ts'
import { jose } from './jose-module.ts'

/** Picks the key a token's header names (jose's local JWKS resolver). */
export type KeyResolver = ReturnType<typeof createLocalJWKSet>

/**
 * Every JWKS the current model's rules use. Remote sets are keyed by where they come from, so a reload
 * that keeps a rule keeps its keys; the runtime owns one cache for the process.
 */
export class JwksCache {
  readonly #refreshMs: number
  readonly #remote = new Map<string, RemoteJwks>()
  readonly #inline = new WeakMap<JwtRuleModel, KeyResolver>()

  /** `refreshMs`: how often a fetched key set is fetched again (istiod's default is 20 minutes). */
  constructor(refreshMs: number) {
    this.#refreshMs = refreshMs
  }

  /** Starts fetching the key sets `policy` needs, and forgets those it no longer does. */
  retain(policy: RequestAuthenticationModel | undefined): void {
    const used = new Set<string>()
    for (const rule of policy?.rules ?? []) {
      if (rule.jwks.kind === 'inline') continue
      used.add(this.#remoteFor(rule.jwks).key)
    }
    for (const [key, remote] of this.#remote) {
      if (used.has(key)) continue
      remote.close()
      this.#remote.delete(key)
    }
  }

  /** The rule's keys now, or once a fetch ends; undefined when no key set could be fetched. */
  keysFor(rule: JwtRuleModel): KeyResolver | Promise<KeyResolver | undefined> {
    const spec = rule.jwks
    if (spec.kind !== 'inline') return this.#remoteFor(spec).keys()
    let keys = this.#inline.get(rule)
    if (keys === undefined) {
      keys = jose().createLocalJWKSet(spec.jwks as JSONWebKeySet)
      this.#inline.set(rule, keys)
    }
    return keys
  }

  close(): void {
    for (const remote of this.#remote.values()) remote.close()
    this.#remote.clear()
  }

  #remoteFor(spec: Exclude<JwksSpec, { kind: 'inline' }>): RemoteJwks {
    const key =
      spec.kind === 'uri' ? `${spec.uri} ${spec.timeoutMs}` : `issuer:${spec.issuer} ${spec.timeoutMs}`
    let remote = this.#remote.get(key)
    if (remote === undefined) {
      remote = new RemoteJwks(key, spec, this.#refreshMs)
      this.#remote.set(key, remote)
    }
    return remote
  }
}

/** One fetched key set: one fetch in flight at a time, shared by the requests that wait for it. */
class RemoteJwks {
  readonly key: string
  readonly #spec: Exclude<JwksSpec, { kind: 'inline' }>
  readonly #timer: NodeJS.Timeout
  #keys: KeyResolver | undefined
  #fetching: Promise<KeyResolver | undefined> | undefined

  constructor(key: string, spec: Exclude<JwksSpec, { kind: 'inline' }>, refreshMs: number) {
    this.key = key
    this.#spec = spec
    // Fetched ahead of the first token (Envoy's async_fetch), so that request does not wait.
    void this.#fetch()
    this.#timer = setInterval(() => void this.#fetch(), refreshMs).unref()
  }

  keys(): KeyResolver | Promise<KeyResolver | undefined> {
    return this.#keys ?? this.#fetch()
  }

  close(): void {
    clearInterval(this.#timer)
  }

  #fetch(): Promise<KeyResolver | undefined> {
    this.#fetching ??= fetchKeySet(this.#spec).then(
      (jwks) => {
        this.#fetching = undefined
        this.#keys = jose().createLocalJWKSet(jwks)
        return this.#keys
      },
      (err: unknown) => {
        this.#fetching = undefined
        // As istiod's JwtKeyResolver: a failed refresh keeps the last key set that was fetched.
        log.warning(`JWKS ${describe(this.#spec)}: fetch failed: ${(err as Error).message}`)
        return this.#keys
      },
    )
    return this.#fetching
  }
}

function describe(spec: Exclude<JwksSpec, { kind: 'inline' }>): string {
  return spec.kind === 'uri' ? spec.uri : `of issuer ${spec.issuer} (OpenID discovery)`
}

/** GETs the key set, or the issuer's discovery document and then the key set it names. */
async function fetchKeySet(spec: Exclude<JwksSpec, { kind: 'inline' }>): Promise<JSONWebKeySet> {
  let uri: string
  if (spec.kind === 'uri') uri = spec.uri
  else {
    // istiod's resolver: `<issuer>/.well-known/openid-configuration`, field `jwks_uri`.
    const discovery = await getJson(
      `${spec.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
      spec.timeoutMs,
    )
    const named = (discovery as { jwks_uri?: unknown }).jwks_uri
    if (typeof named !== 'string') throw new Error('the discovery document has no jwks_uri')
    uri = named
  }
  const jwks = await getJson(uri, spec.timeoutMs)
  if (!Array.isArray((jwks as { keys?: unknown }).keys)) throw new Error(`${uri}: no "keys" array`)
  jose().createLocalJWKSet(jwks as JSONWebKeySet)
  return jwks as JSONWebKeySet
}

async function getJson(uri: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' })
  if (!res.ok) {
    await res.body?.cancel()
    throw new Error(`${uri}: HTTP ${res.status}`)
  }
  const value: unknown = await res.json()
  if (typeof value !== 'object' || value === null) throw new Error(`${uri}: not a JSON object`)
  return value
}
