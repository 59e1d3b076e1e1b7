// Which listener a captured connection belongs to, by its original destination: Envoy's filter-chain match on destination IP and port.

import { BlockList, isIP } from 'node:net'
import type { ListenerModel, TrafficDirection } from '../config/model.ts'
import type { OriginalDestination } from '../protocol/original-destination.ts'

interface Subnet<T> {
  readonly block: BlockList
  readonly family: 'ipv4' | 'ipv6'
  readonly prefix: number
  readonly target: T
}

/**
 * The listeners a capture listener may hand connections to (those with `bindToPort: false`), indexed
 * once per reconcile. Outbound: an exact `address:port` listener (a service VIP) first, then the
 * longest CIDR on that port, then `0.0.0.0_<port>`; inbound: the listener of the port. Undefined: the
 * capture listener serves the connection itself (its passthrough chain).
 */
export class CaptureTargets<T> {
  readonly #exact = new Map<string, T>()
  readonly #subnets = new Map<number, Subnet<T>[]>()
  readonly #anyAddress = new Map<string, T>()

  constructor(listeners: Iterable<{ readonly model: ListenerModel; readonly target: T }>) {
    for (const { model, target } of listeners) {
      if (model.bindToPort !== false) continue
      const address = model.address
      if (model.direction === 'inbound' || address === '0.0.0.0' || address === '::') {
        this.#anyAddress.set(`${model.direction}|${model.port}`, target)
        continue
      }
      const slash = address.indexOf('/')
      if (slash === -1) {
        this.#exact.set(`${address}|${model.port}`, target)
        continue
      }
      const ip = address.slice(0, slash)
      const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4'
      const prefix = Number(address.slice(slash + 1))
      const block = new BlockList()
      block.addSubnet(ip, prefix, family)
      const list = this.#subnets.get(model.port) ?? []
      list.push({ block, family, prefix, target })
      list.sort((a, b) => b.prefix - a.prefix)
      this.#subnets.set(model.port, list)
    }
  }

  /** The listener for a connection to `destination` arriving on a capture listener of `direction`. */
  match(direction: TrafficDirection, destination: OriginalDestination): T | undefined {
    const { address, port } = destination
    if (direction === 'outbound') {
      const exact = this.#exact.get(`${address}|${port}`)
      if (exact !== undefined) return exact
      const subnets = this.#subnets.get(port)
      if (subnets !== undefined) {
        const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
        for (const s of subnets) if (s.family === family && s.block.check(address, family)) return s.target
      }
    }
    return this.#anyAddress.get(`${direction}|${port}`)
  }
}
