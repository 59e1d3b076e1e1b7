// Starts the node floor (node-floor-idle-server.ts): a bare node server of one protocol, with the proxy's node settings and an inspector.

import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { missingEnvironment } from '../../src/cli/node-settings.ts'
import { type Child, startChild } from '../support/children.ts'
import { inspectorFlag } from '../support/inspector-gc.ts'
import { freePorts } from '../support/ports.ts'
import type { IdleProtocol } from '../workloads/idle-connections.ts'
import { proxyNodeFlags, repoRoot } from './outrigger-process.ts'

export interface NodeFloorProcess {
  readonly child: Child
  readonly port: number
  stop(): Promise<void>
}

const script = join(repoRoot, 'bench', 'systems', 'node-floor-idle-server.ts')

/**
 * A fresh bare node server of `protocol` on a free port (mTLS: the server certificate in `<certs>/server`).
 * It runs with the node flags and the glibc tunable this checkout's proxy gives itself (src/cli/node-settings.ts:
 * the young generation's size and the trim threshold shape RSS), and `--inspect=127.0.0.1:<port>` for the
 * collections before each reading. Started again on new ports when one was taken before it was bound.
 */
export async function startNodeFloor(protocol: IdleProtocol, certs: string): Promise<NodeFloorProcess> {
  for (let attempt = 1; ; attempt++) {
    const [port, inspectPort] = await freePorts(2)
    const child = startChild(
      `node floor ${protocol}`,
      process.execPath,
      [...proxyNodeFlags, inspectorFlag(inspectPort), script, protocol, String(port), join(certs, 'server')],
      { env: { ...process.env, ...missingEnvironment(process.env) } },
    )
    let exited = false
    void child.exited.then(() => {
      exited = true
    })
    for (let waited = 0; !exited && !child.output().includes(`listening on ${port}`); waited += 50) {
      if (waited > 15_000) {
        await child.stop(1_000)
        throw new Error(`the node floor did not start within 15 s: ${child.output()}`)
      }
      await sleep(50)
    }
    if (!exited) return { child, port, stop: () => child.stop(3_000) }
    if (attempt === 3 || !/EADDRINUSE/.test(child.output()))
      throw new Error(`the node floor exited at start: ${child.output()}`)
  }
}
