// The request `outrigger explain` asks about: its flags, admin /explain's parameters, and the checks both get.

import type { TrafficDirection } from '../config/model.ts'

/** What `outrigger explain` flags and admin `/explain` parameters describe. */
export interface ExplainQuery {
  /** The Host / :authority, with or without a port (`reviews:9080`). */
  readonly authority: string
  /** The path, with or without a query string. */
  readonly path: string
  readonly method: string
  readonly scheme: string
  /** `name:value` pairs, as given. */
  readonly headers: readonly string[]
  /** The mTLS peer of an inbound request, a SPIFFE ID with or without `spiffe://`. */
  readonly sourcePrincipal?: string
  /** The listener port (standalone) or original destination port (capture); absent: chosen as explain.ts says. */
  readonly port?: number
  readonly direction: TrafficDirection
}

/** A usage problem in a query: exit 2 with usage from the CLI, 400 from admin. */
export class ExplainQueryError extends Error {
  readonly code = 'EXPLAIN_QUERY_INVALID'
}

/** The raw values, from CLI flags or URL parameters. */
export interface ExplainQueryInput {
  readonly authority?: string
  readonly path?: string
  readonly method?: string
  readonly scheme?: string
  readonly headers?: readonly string[]
  readonly sourcePrincipal?: string
  readonly port?: string
  readonly direction?: string
}

/** Checks and completes a query: `--authority` is required, the path defaults to `/`, the method to GET. */
export function explainQuery(input: ExplainQueryInput): ExplainQuery {
  const authority = input.authority
  if (authority === undefined || authority === '') throw new ExplainQueryError('--authority is required')
  const path = input.path ?? '/'
  if (!path.startsWith('/')) throw new ExplainQueryError(`path '${path}' does not start with /`)
  for (const header of input.headers ?? []) {
    if (header.indexOf(':') <= 0) throw new ExplainQueryError(`header '${header}' is not name:value`)
  }
  let port: number | undefined
  if (input.port !== undefined) {
    port = Number(input.port)
    if (!/^\d+$/.test(input.port) || port < 1 || port > 65535)
      throw new ExplainQueryError(`port '${input.port}' is not a port number`)
  }
  const direction = input.direction ?? 'outbound'
  if (direction !== 'inbound' && direction !== 'outbound')
    throw new ExplainQueryError(`direction '${direction}' is not inbound or outbound`)
  const scheme = input.scheme ?? 'http'
  if (scheme !== 'http' && scheme !== 'https')
    throw new ExplainQueryError(`scheme '${scheme}' is not http or https`)
  return {
    authority,
    path,
    method: (input.method ?? 'GET').toUpperCase(),
    scheme,
    headers: input.headers ?? [],
    sourcePrincipal: input.sourcePrincipal,
    port,
    direction,
  }
}

/** Admin /explain's parameters: authority, path, method, scheme, header (repeated), source_principal, port, direction. */
export function explainQueryFromParams(params: URLSearchParams): ExplainQuery {
  const text = (name: string): string | undefined => params.get(name) ?? undefined
  return explainQuery({
    authority: text('authority'),
    path: text('path'),
    method: text('method'),
    scheme: text('scheme'),
    headers: params.getAll('header'),
    sourcePrincipal: text('source_principal'),
    port: text('port'),
    direction: text('direction'),
  })
}

/** The parameters of admin /explain for a query (what `outrigger explain --admin` sends). */
export function explainParams(query: ExplainQuery): URLSearchParams {
  const params = new URLSearchParams({
    authority: query.authority,
    path: query.path,
    method: query.method,
    scheme: query.scheme,
    direction: query.direction,
  })
  for (const header of query.headers) params.append('header', header)
  if (query.sourcePrincipal !== undefined) params.set('source_principal', query.sourcePrincipal)
  if (query.port !== undefined) params.set('port', String(query.port))
  return params
}

/** The query's headers by lowercase name, repeated ones joined with `, ` (as node's req.headers joins them). */
export function headerMap(query: ExplainQuery): Map<string, string> {
  const headers = new Map<string, string>()
  for (const header of query.headers) {
    const colon = header.indexOf(':')
    const name = header.slice(0, colon).trim().toLowerCase()
    const value = header.slice(colon + 1).trim()
    const before = headers.get(name)
    headers.set(name, before === undefined ? value : `${before}, ${value}`)
  }
  return headers
}
