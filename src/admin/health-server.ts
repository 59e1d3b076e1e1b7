// Istio's status port (15021): GET /healthz/ready answers 200 once config is loaded and every listener is bound, and /app-health/… runs the app's own kubelet probes.

import type { Server } from 'node:http'
import { createServer } from '../protocol/node-http.ts'
import type { ProxyRuntime } from '../proxy-runtime.ts'
import { log } from '../telemetry/log.ts'
import { runAppProbe } from './app-probe.ts'

/** The prefixes Istio's status server hands to its app-probe handler. */
const APP_PROBE_PREFIXES = ['/app-health/', '/app-lifecycle/']

export function createHealthServer(proxy: ProxyRuntime): Server {
  const probers = proxy.bootstrap.appProbers
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]
    if (req.method === 'GET' && path === '/healthz/ready') {
      const ready = proxy.ready
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
      res.end(ready ? 'ready\n' : 'not ready\n')
      return
    }
    if (APP_PROBE_PREFIXES.some((prefix) => path.startsWith(prefix))) {
      const prober = Object.hasOwn(probers, path) ? probers[path] : undefined
      if (prober === undefined) {
        // Istio's answer for a path the injector wrote no probe for.
        res.writeHead(400, { 'content-type': 'text/plain' })
        res.end(`app prober config does not exists for ${path}`)
        return
      }
      void runAppProbe(prober, req, req.socket.localPort ?? 0).then(
        ({ status, body }) => {
          if (status >= 400) log.debug(`app probe ${path} failed with ${status}`)
          res.writeHead(status)
          res.end(body)
        },
        (error: Error) => {
          log.error(`app probe ${path}: ${error.message}`)
          res.writeHead(500)
          res.end()
        },
      )
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found\n')
  })
}
