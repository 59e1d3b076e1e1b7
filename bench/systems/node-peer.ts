// The fastest Node alternative a user would pick: @fastify/http-proxy (undici) or http-proxy, each in its own process.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startChild } from '../support/children.ts'
import { waitHttp } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import type { NodePeerFlavour } from './node-peer-server.ts'
import type { SystemDef } from './system.ts'

const server = join(import.meta.dirname, 'node-peer-server.ts')

function version(pkg: string): string {
  try {
    const path = join(import.meta.dirname, '..', '..', 'node_modules', pkg, 'package.json')
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

export const NODE_PEER_FLAVOURS: readonly NodePeerFlavour[] = ['fastify', 'http-proxy']

export function nodePeerSystem(flavour: NodePeerFlavour): SystemDef {
  const label = flavour === 'fastify' ? '@fastify/http-proxy' : 'http-proxy'
  return {
    name: 'node-peer',
    label,
    async start(ctx) {
      const [port] = await freePorts(1)
      const child = startChild(label, process.execPath, [
        server,
        flavour,
        String(port),
        String(ctx.upstreamPort),
      ])
      await waitHttp(port, '/1k', 15_000, () => child.output(), child.exited)
      const detail =
        flavour === 'fastify'
          ? `@fastify/http-proxy ${version('@fastify/http-proxy')} (fastify ${version('fastify')}, undici pool), node ${process.version}`
          : `http-proxy ${version('http-proxy')} (node:http keep-alive agent), node ${process.version}`
      return { name: 'node-peer', target: { port }, pids: [child.pid], detail, stop: () => child.stop() }
    },
  }
}
