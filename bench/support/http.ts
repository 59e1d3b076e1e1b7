// Plain HTTP/1.1 checks against loopback targets: wait until one answers, and fetch a body to verify a path.

import { request } from 'node:http'

export interface Fetched {
  readonly status: number
  readonly bytes: number
  readonly headers: Record<string, string | string[] | undefined>
}

/** One GET on a fresh connection to 127.0.0.1:`port`. */
export function get(port: number, path: string, host?: string, timeoutMs = 2_000): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: host === undefined ? {} : { host },
        timeout: timeoutMs,
      },
      (res) => {
        let bytes = 0
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, headers: res.headers }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`GET :${port}${path} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/** Polls until `check` resolves true, failing after `timeoutMs` with `describe()` in the message. */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
  exited?: Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exitCode: string | undefined
  void exited?.then((c) => {
    exitCode = c
  })
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`exited with ${exitCode} before it was ready:\n${describe()}`)
    try {
      if (await check()) return
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`not ready after ${timeoutMs} ms:\n${describe()}`)
}

/** Waits until GET `path` on `port` answers 200. */
export function waitHttp(
  port: number,
  path: string,
  timeoutMs: number,
  describe: () => string,
  exited?: Promise<string>,
) {
  return waitFor(
    async () => (await get(port, path, undefined, 500)).status === 200,
    timeoutMs,
    describe,
    exited,
  )
}
