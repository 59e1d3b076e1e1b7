// Builds the Location of an HTTPRedirect from the request, as Envoy's redirect action does.

import type { RedirectAction } from './route.ts'

const defaultPorts: Readonly<Record<string, string>> = { http: '80', https: '443' }

export interface RedirectSource {
  readonly scheme: string
  /** Host header as sent, maybe with a port. */
  readonly authority: string
  /** Path and query as sent. */
  readonly url: string
  /** The port the request arrived for, used by `derivePort: FROM_REQUEST_PORT`. */
  readonly port: number
}

function splitHostPort(authority: string): [string, string | undefined] {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']')
    const rest = authority.slice(end + 1)
    return [authority.slice(0, end + 1), rest.startsWith(':') ? rest.slice(1) : undefined]
  }
  const colon = authority.lastIndexOf(':')
  return colon === -1 ? [authority, undefined] : [authority.slice(0, colon), authority.slice(colon + 1)]
}

export function redirectLocation(action: RedirectAction, req: RedirectSource): string {
  const scheme = action.scheme ?? req.scheme
  const [requestHost, requestPort] = splitHostPort(req.authority)
  let host = requestHost
  let port = requestPort
  if (action.authority !== undefined) {
    const [h, p] = splitHostPort(action.authority)
    host = h
    port = p
  }
  if (action.port !== undefined) port = String(action.port)
  else if (action.derivePort === 'FROM_REQUEST_PORT') port = String(req.port)
  else if (action.derivePort === 'FROM_PROTOCOL_DEFAULT') port = undefined
  if (port !== undefined && defaultPorts[scheme] === port) port = undefined
  let pathAndQuery = req.url
  if (action.uri !== undefined) {
    const q = req.url.indexOf('?')
    pathAndQuery = action.uri.includes('?') || q === -1 ? action.uri : action.uri + req.url.slice(q)
  }
  return `${scheme}://${host}${port === undefined ? '' : `:${port}`}${pathAndQuery}`
}
