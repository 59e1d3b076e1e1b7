// ServiceEntry hosts without `addresses` get a stable virtual IP from 240.240.0.0/16 and 2001:2::/48 (Istio's DNS auto allocation).

import type { Service } from './service-registry.ts'

/**
 * Slots of the allocation table: 240.240.a.b with a in 0..255 and b in 1..254 (never .0 nor .255, which
 * Istio's allocator also avoids).
 */
const slotCount = 256 * 254
/** The largest prime below the slot count, the step base of double hashing (also Istio's, below its 255*255 slots). */
const probePrime = 65011

/**
 * Whether Istio allocates for this host (pilot/pkg/serviceregistry/serviceentry, autoAllocateIPs and
 * shouldV2AutoAllocateIPFromPieces): no `addresses` given, a resolution other than NONE (with NONE the
 * original destination is the app's own choice, so a made-up address could not be honoured), and not a
 * wildcard host.
 */
export function needsAllocation(service: Service): boolean {
  return service.addresses.length === 0 && service.resolution !== 'NONE' && !service.fqdn.startsWith('*')
}

/** FNV-1a, 32 bits: the hash Istio's allocator takes of `namespace/host`. */
function fnv1a32(text: string): number {
  let hash = 0x811c9dc5
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

/** The IPv4 and IPv6 address of a slot: 240.240.a.b and 2001:2::f0f0:<a·256+b>, the same two octets in both. */
export function slotAddresses(slot: number): readonly [string, string] {
  const a = Math.floor(slot / 254)
  const b = (slot % 254) + 1
  return [`240.240.${a}.${b}`, `2001:2::f0f0:${((a << 8) | b).toString(16)}`]
}

/**
 * Returns the registry with an address pair allocated to every service that needs one, marked
 * `autoAllocated`. As Istio's first allocator, the slot is the hash of `namespace/host`, and a collision
 * probes by double hashing; hosts are taken in sorted order, so the same set of hosts gets the same
 * addresses in every process and whatever order the files are read in. A host keeps its address across
 * reloads unless a host added later sorts before it and collides with it (one chance in 65024 per pair).
 */
export function withAllocatedAddresses(services: ReadonlyMap<string, Service>): Map<string, Service> {
  const out = new Map(services)
  const keyed: { key: string; service: Service }[] = []
  for (const service of services.values()) {
    if (needsAllocation(service)) keyed.push({ key: `${service.namespace}/${service.fqdn}`, service })
  }
  keyed.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
  const taken = new Uint8Array(slotCount)
  let allocated = 0
  for (const { key, service } of keyed) {
    if (allocated === slotCount) break
    const hash = fnv1a32(key)
    let slot = hash % slotCount
    const step = probePrime - (hash % probePrime)
    // The step may share a factor with the slot count: after a full round of probes, the next free slot.
    for (let probes = 0; taken[slot] === 1; probes++)
      slot = probes < slotCount ? (slot + step) % slotCount : (slot + 1) % slotCount
    taken[slot] = 1
    allocated++
    out.set(service.fqdn, { ...service, addresses: slotAddresses(slot), autoAllocated: true })
  }
  return out
}
