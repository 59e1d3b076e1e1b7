// The two endpoint processes behind every soak service: started, killed with SIGKILL and started again on the same ports.

import { join } from 'node:path'
import { type Child, startChild } from '../support/children.ts'
import { freePorts } from '../support/ports.ts'
import type { EndpointPorts } from './resources.ts'

const endpointScript = join(import.meta.dirname, 'endpoint.ts')

export class Endpoints {
  readonly ports: readonly EndpointPorts[]
  readonly #children = new Map<string, Child>()
  /** How many times each endpoint has been killed: a connection opened at epoch e may drop once it is above e. */
  readonly #kills = new Map<string, number>()
  /** When an endpoint last came back (performance.now()). */
  #lastRevived = Number.NEGATIVE_INFINITY

  private constructor(ports: readonly EndpointPorts[]) {
    this.ports = ports
  }

  static async start(names: readonly string[]): Promise<Endpoints> {
    const ports: EndpointPorts[] = []
    for (const name of names) {
      const [h1, h2, grpc, tcp] = await freePorts(4)
      ports.push({ name, h1, h2, grpc, tcp })
    }
    const endpoints = new Endpoints(ports)
    for (const p of ports) await endpoints.revive(p.name)
    return endpoints
  }

  killEpoch(name: string): number {
    return this.#kills.get(name) ?? 0
  }

  /** Every endpoint's kill count now, to compare with later (killedSince). */
  epochs(): ReadonlyMap<string, number> {
    return new Map(this.#kills)
  }

  /** True when the endpoint `name` was killed after `epochs` was taken. */
  killedSince(name: string | undefined, epochs: ReadonlyMap<string, number>): boolean {
    return name !== undefined && this.killEpoch(name) > (epochs.get(name) ?? 0)
  }

  /**
   * True while an endpoint is down and for 2 s after it is back: the time in which a new connection may
   * still be sent to it (the proxy has not ejected it yet, or its outlier state is catching up).
   */
  disrupted(): boolean {
    return this.#children.size < this.ports.length || performance.now() - this.#lastRevived < 2_000
  }

  /** The endpoint's pid while it runs. */
  pid(name: string): number | undefined {
    return this.#children.get(name)?.pid
  }

  /** SIGKILL: the kernel closes its sockets, as when a pod's container dies. */
  async kill(name: string): Promise<void> {
    const child = this.#children.get(name)
    if (child === undefined) return
    this.#kills.set(name, this.killEpoch(name) + 1)
    this.#children.delete(name)
    child.process.kill('SIGKILL')
    await child.exited
  }

  /** Starts the endpoint on its ports and resolves once it listens on all of them. */
  async revive(name: string): Promise<void> {
    const p = this.ports.find((e) => e.name === name)
    if (p === undefined) throw new Error(`no endpoint ${name}`)
    const child = startChild(`soak endpoint ${name}`, process.execPath, [
      endpointScript,
      name,
      String(p.h1),
      String(p.h2),
      String(p.grpc),
      String(p.tcp),
    ])
    const deadline = Date.now() + 15_000
    while (!child.output().includes('ready')) {
      const exited = await Promise.race([
        child.exited,
        new Promise((r) => setTimeout(() => r(undefined), 50)),
      ])
      if (exited !== undefined || Date.now() > deadline) {
        await child.stop(0)
        throw new Error(`endpoint ${name} did not start (${exited ?? 'timeout'}):\n${child.output()}`)
      }
    }
    this.#children.set(name, child)
    this.#lastRevived = performance.now()
  }

  async stop(): Promise<void> {
    for (const child of this.#children.values()) await child.stop(1_000)
    this.#children.clear()
  }
}
