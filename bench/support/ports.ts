// Free loopback ports for the bench: bind port 0 on 127.0.0.1, read the port, release it.

import { createServer } from 'node:net'

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** `n` distinct free ports; distinct also from every port handed out earlier in this run. */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < n) {
    const port = await freePort()
    if (!given.has(port)) {
      given.add(port)
      ports.push(port)
    }
  }
  return ports
}

const given = new Set<number>()
