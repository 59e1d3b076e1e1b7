// The admin dashboard's files: its page, script and style (admin/dashboard/ beside this module, in src or dist) and uPlot from its npm package.

import { readFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/** Where a served file is read from, resolved when it is asked for (a missing file answers 500, never at start). */
interface DashboardFile {
  readonly path: () => string
  readonly type: string
}

const resolvePackageFile = createRequire(import.meta.url).resolve
const own = (name: string) => () => fileURLToPath(new URL(`./dashboard/${name}`, import.meta.url))

const files: ReadonlyMap<string, DashboardFile> = new Map([
  ['/', { path: own('index.html'), type: 'text/html; charset=utf-8' }],
  ['/dashboard/dashboard.js', { path: own('dashboard.js'), type: 'text/javascript; charset=utf-8' }],
  ['/dashboard/dashboard.css', { path: own('dashboard.css'), type: 'text/css; charset=utf-8' }],
  [
    '/dashboard/uplot.js',
    {
      path: () => resolvePackageFile('uplot/dist/uPlot.iife.min.js'),
      type: 'text/javascript; charset=utf-8',
    },
  ],
  [
    '/dashboard/uplot.css',
    { path: () => resolvePackageFile('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
  ],
])

/** The npm packages the dashboard serves as files rather than imports (test/dependencies.test.ts reads it). */
export const servedPackages: readonly string[] = ['uplot']

/**
 * The page may load only what admin serves and talk only to admin (no CDN, no font, no inline script):
 * a Content-Security-Policy makes a browser refuse, and report in its console, anything else.
 */
const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** Reads the file at request time and answers it; 404 for a path that is not the dashboard's. */
export async function serveDashboardFile(pathname: string, res: ServerResponse): Promise<void> {
  const file = files.get(pathname)
  if (file === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    return
  }
  let body: Buffer
  try {
    body = await readFile(file.path())
  } catch (error) {
    const message = `dashboard file missing: ${(error as Error).message}\n`
    res.writeHead(500, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(message) })
    res.end(message)
    return
  }
  res.writeHead(200, {
    'content-type': file.type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'content-security-policy': contentSecurityPolicy,
  })
  res.end(body)
}
