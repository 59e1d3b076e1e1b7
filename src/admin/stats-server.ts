// Istio's stats port (15090): GET /stats/prometheus serves the proxy's metrics, Istio's standard ones and Envoy's, for Prometheus to scrape.

import type { Server } from 'node:http'
import { createServer } from '../protocol/node-http.ts'
import type { ProxyRuntime } from '../proxy-runtime.ts'
import type { OtherWorkers } from './other-workers.ts'
import { prometheusText } from './prometheus-stats.ts'

export function createStatsServer(proxy: ProxyRuntime, others?: OtherWorkers): Server {
  return createServer((req, res) => {
    const path = req.url?.split('?', 1)[0]
    if (req.method === 'GET' && path === '/stats/prometheus') {
      prometheusText(proxy.stats, others).then(
        (body) => {
          res.writeHead(200, {
            'content-type': proxy.stats.contentType,
            'content-length': Buffer.byteLength(body),
          })
          res.end(body)
        },
        (error: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' })
          res.end(`${error.message}\n`)
        },
      )
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found\n')
  })
}
