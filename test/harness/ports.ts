// Free loopback ports for tests: bind port 0, read the port, release it; never the same port twice in one test process.

import { createServer } from 'node:net'

/** Every port handed out in this process: a test's own ports and the proxy's admin/health ports must not meet. */
const given = new Set<number>()

function bindAndRelease(): Promise<number> {
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

/**
 * A port nothing listens on now, distinct from every port handed out earlier in this process (the
 * kernel may give a released port again, and a test's ingress port once met the proxy's admin port).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await bindAndRelease()
    if (given.has(port)) continue
    given.add(port)
    return port
  }
}

export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < n) ports.push(await freePort())
  return ports
}
