// How the live commands (stat, top, tap, explain) reach a running proxy's admin API: its address and one GET.

import { get } from 'node:http'

/** Where the admin API listens by default (bootstrap `listeners.admin`). */
export const defaultAdmin = '127.0.0.1:15000'

/** The admin API's host and port as `--admin` gives them. */
export interface AdminAddress {
  readonly host: string
  readonly port: number
}

/** `host:port`, `[v6]:port` or a bare port (meaning 127.0.0.1); undefined when it is none of them. */
export function parseAdminAddress(text: string): AdminAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$|^(\d{1,5})$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[3] ?? match[4])
  if (port < 1 || port > 65535) return undefined
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port }
}

/** The address as a URL authority (`host:port`, IPv6 in brackets). */
export function adminAuthority(admin: AdminAddress): string {
  return `${admin.host.includes(':') ? `[${admin.host}]` : admin.host}:${admin.port}`
}

/** The admin API could not be reached, or gave no answer in time; its message says which. */
export class AdminUnreachable extends Error {}

/**
 * GETs `path` from admin and resolves with the status and body, whatever the status. node:http rather
 * than fetch: fetch refuses the ports the Fetch standard calls bad (1, 6000, …), and admin may listen on any.
 */
export function getAdmin(
  admin: AdminAddress,
  path: string,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<{ status: number; body: string }> {
  const timeoutMs = options.timeoutMs ?? 5_000
  const where = adminAuthority(admin)
  return new Promise((resolve, reject) => {
    const req = get(
      { host: admin.host, port: admin.port, path, agent: false, signal: options.signal, timeout: timeoutMs },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('error', reject)
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('timeout', () =>
      req.destroy(new AdminUnreachable(`admin ${where} gave no answer within ${timeoutMs} ms`)),
    )
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err instanceof AdminUnreachable || err.name === 'AbortError'
          ? err
          : new AdminUnreachable(`cannot reach the admin API at ${where}: ${err.code ?? err.message}`),
      ),
    )
  })
}
