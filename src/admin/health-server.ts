// Istio's readiness port (15021): GET /healthz/ready answers 200 once config is loaded and listeners are bound.

import { createServer, type Server } from 'node:http'
import type { ProxyRuntime } from '../proxy-runtime.ts'

export function createHealthServer(proxy: ProxyRuntime): Server {
  return createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz/ready') {
      const ready = proxy.ready
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
      res.end(ready ? 'ready\n' : 'not ready\n')
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found\n')
  })
}
