// A Node reverse proxy a user would pick instead of Outrigger, run as its own process: `node node-peer-server.ts <fastify|http-proxy> <port> <upstreamPort>`.

import { Agent, createServer } from 'node:http'
import httpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import HttpProxy from 'http-proxy'

export type NodePeerFlavour = 'fastify' | 'http-proxy'

async function startFastify(port: number, upstream: string): Promise<void> {
  const app = Fastify({ logger: false })
  // @fastify/http-proxy → @fastify/reply-from → an undici Pool with keep-alive upstream connections.
  await app.register(httpProxy, {
    upstream,
    undici: { connections: 256, pipelining: 1, keepAliveTimeout: 300_000 },
  })
  await app.listen({ port, host: '127.0.0.1' })
}

function startHttpProxy(port: number, upstream: string): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 300_000 })
  const proxy = HttpProxy.createProxyServer({ target: upstream, agent })
  proxy.on('error', (_err, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502)
    res.end()
  })
  const server = createServer((req, res) => proxy.web(req, res))
  server.keepAliveTimeout = 300_000
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
}

const [flavour, portText, upstreamText] = process.argv.slice(2)
const port = Number(portText)
const upstream = `http://127.0.0.1:${Number(upstreamText)}`
if (flavour === 'fastify') await startFastify(port, upstream)
else if (flavour === 'http-proxy') await startHttpProxy(port, upstream)
else throw new Error(`unknown flavour ${flavour}`)
process.stdout.write(`${flavour} listening on ${port}\n`)
process.on('SIGTERM', () => process.exit(0))
