// Unit tests for ring hash and Maglev against the vectors in Envoy's own tests, plus stability and key handling.

import { describe, expect, it } from 'vitest'
import type { HashKeyModel, LoadBalancerModel } from '../../config/model.ts'
import { xxHash64 } from './hash.ts'
import { HostSet, type HostSetEndpoint } from './host-set.ts'
import type { LbEndpoint } from './load-balancer.ts'
import { DEFAULT_TABLE_SIZE, Maglev, MaglevTable } from './maglev.ts'
import { HashRing, RingHash } from './ring-hash.ts'
import { MASK_64, request, scripted } from './test-support.ts'

/** Envoy's test hosts: makeTestHost(info_, "tcp://127.0.0.1:<port>", weight). */
const hosts = (ports: number[], weights: number[] = []): LbEndpoint[] =>
  ports.map((port, i) => ({ hostPort: `127.0.0.1:${port}`, weight: weights[i] ?? 1, activeRequests: 0 }))
const halves = (hash: bigint): [number, number] => [Number(hash >> 32n), Number(hash & 0xffff_ffffn)]
const ringLookup = (ring: HashRing, hash: bigint) => ring.lookup(...halves(hash))
const tableLookup = (table: MaglevTable, hash: bigint) => table.lookup(...halves(hash))
/** The ring as Envoy's tests print it: [position, port] in ring order. */
const ringContents = (ring: HashRing, list: LbEndpoint[]) =>
  Array.from(ring.owners, (owner, k) => [
    (BigInt(ring.hi[k]) << 32n) | BigInt(ring.lo[k]),
    Number(list[owner].hostPort.split(':')[1]),
  ])
/** Envoy's sweep: hashes i × (2^64 − 1) / n for i < n, counted by the port they land on. */
function sweep(lookup: (hash: bigint) => number, list: LbEndpoint[], n: number): Record<number, number> {
  const counts: Record<number, number> = {}
  const step = MASK_64 / BigInt(n)
  for (let i = 0n; i < BigInt(n); i++) {
    const port = Number(list[lookup(i * step)].hostPort.split(':')[1])
    counts[port] = (counts[port] ?? 0) + 1
  }
  return counts
}

// envoyproxy/envoy test/extensions/load_balancing_policies/ring_hash/ring_hash_lb_test.cc
describe("ring hash: Envoy's ring_hash_lb_test.cc", () => {
  const six = hosts([90, 91, 92, 93, 94, 95])

  it('Basic: six hosts, minimum ring size 12, the ring and the hosts picked', () => {
    const ring = new HashRing(six, 12)
    expect(ringContents(ring, six)).toEqual([
      [833437586790550860n, 94],
      [928266305478181108n, 92],
      [1033482794131418490n, 90],
      [3551244743356806947n, 95],
      [3851675632748031481n, 93],
      [5583722120771150861n, 91],
      [6311230543546372928n, 91],
      [7700377290971790572n, 93],
      [13144177310400110813n, 95],
      [13444792449719432967n, 92],
      [15516499411664133160n, 94],
      [16117243373044804889n, 90],
    ])
    expect(ringLookup(ring, 0n)).toBe(4)
    expect(ringLookup(ring, MASK_64)).toBe(4)
    expect(ringLookup(ring, 3551244743356806947n)).toBe(5)
    expect(ringLookup(ring, 3551244743356806948n)).toBe(3)
    expect(ringLookup(ring, 16117243373044804880n)).toBe(0)
  })

  it('UnevenHosts: two hosts, minimum 3, give two points each; the ring follows the host set', () => {
    const first = hosts([80, 81])
    const ring = new HashRing(first, 3)
    expect(ringContents(ring, first)).toEqual([
      [5454692015285649509n, 80],
      [7859399908942313493n, 81],
      [13838424394637650569n, 80],
      [16064866803292627174n, 81],
    ])
    expect(ringLookup(ring, 0n)).toBe(0)
    const next = hosts([81, 82])
    const moved = new HashRing(next, 3)
    expect(ringContents(moved, next)).toEqual([
      [7859399908942313493n, 81],
      [8241336090459785962n, 82],
      [12882406409176325258n, 82],
      [16064866803292627174n, 81],
    ])
    expect(ringLookup(moved, 0n)).toBe(0)
  })

  it('HostWeightedTinyRing: weights 1, 2, 3 in a ring of exactly 6', () => {
    const list = hosts([90, 91, 92], [1, 2, 3])
    const ring = new HashRing(list, 6, undefined, 6)
    expect(ring.size).toBe(6)
    const expected: [bigint, number][] = [
      [928266305478181108n, 2],
      [4443673547860492590n, 2],
      [5583722120771150861n, 1],
      [6311230543546372928n, 1],
      [13444792449719432967n, 2],
      [16117243373044804889n, 0],
    ]
    for (const [hash, index] of expected) expect(ringLookup(ring, hash)).toBe(index)
  })

  it('HostWeightedLargeRing: weights 1, 2, 3 with minimum 6144 split a sweep 987 / 1932 / 3081', () => {
    const list = hosts([90, 91, 92], [1, 2, 3])
    const ring = new HashRing(list, 6144)
    expect(ring.size).toBe(6144)
    expect(sweep((h) => ringLookup(ring, h), list, 6000)).toEqual({ 90: 987, 91: 1932, 92: 3081 })
  })

  it('HostAndLocalityWeightedTinyRing / LargeRing: host weights within locality weights', () => {
    // :90 and :91 (1:2) in a zone of weight 1, :92 and :93 (1:2) in a zone of weight 2: Envoy's
    // normalizeLocalityWeights gives weight × (locality weight / 3) / (the locality's host weights).
    const list = hosts([90, 91, 92, 93])
    const weights = [(1 * (1 / 3)) / 3, (2 * (1 / 3)) / 3, (1 * (2 / 3)) / 3, (2 * (2 / 3)) / 3]
    const tiny = new HashRing(list, 9, weights, 9)
    expect(tiny.size).toBe(9)
    const expected: [bigint, number][] = [
      [928266305478181108n, 2],
      [3851675632748031481n, 3],
      [5583722120771150861n, 1],
      [6311230543546372928n, 1],
      [7700377290971790572n, 3],
      [12559126875973811811n, 3],
      [13444792449719432967n, 2],
      [13784988426630141778n, 3],
      [16117243373044804889n, 0],
    ]
    for (const [hash, index] of expected) expect(ringLookup(tiny, hash)).toBe(index)
    const large = new HashRing(list, 9216, weights)
    expect(large.size).toBe(9216)
    expect(sweep((h) => ringLookup(large, h), list, 9000)).toEqual({ 90: 924, 91: 2009, 92: 2053, 93: 4014 })
  })

  it('LargeFractionalScale: two hosts in a ring of exactly 1023 split a sweep 526 / 497', () => {
    const list = hosts([90, 91])
    const ring = new HashRing(list, 1023, undefined, 1023)
    expect(ring.size).toBe(1023)
    expect(ring.owners.filter((o) => o === 0).length).toBe(512)
    expect(sweep((h) => ringLookup(ring, h), list, 1023)).toEqual({ 90: 526, 91: 497 })
  })

  it('LopsidedWeightSmallScale: 1 host at 127/128 and 1023 at 1/128 in a ring of 1024', () => {
    const list = hosts(Array.from({ length: 1024 }, (_, i) => i))
    const weights = list.map((_, i) => (i === 0 ? (1 * (127 / 128)) / 1 : (1 * (1 / 128)) / 1023))
    const ring = new HashRing(list, 1024, weights, 1024)
    expect(ring.size).toBe(1024)
    expect(ring.owners.filter((o) => o === 0).length).toBe(1016)
    const expected: [bigint, number][] = [
      [11664790346325243808n, 1],
      [15894554872961148518n, 128],
      [13958138884277627155n, 256],
      [15803774069438192949n, 384],
      [3829253010855396576n, 512],
      [17918147347826565154n, 640],
      [6442769608292299103n, 768],
      [5881074926069334434n, 896],
    ]
    for (const [hash, index] of expected) expect(ringLookup(ring, hash)).toBe(index)
  })
})

// envoyproxy/envoy test/extensions/load_balancing_policies/maglev/maglev_lb_test.cc
describe("maglev: Envoy's maglev_lb_test.cc", () => {
  const six = hosts([90, 91, 92, 93, 94, 95])
  /** maglev_lb_test.cc Basic: "maglev: i=0 host=127.0.0.1:92" … for slots 0 to 6. */
  const basic = [2, 4, 0, 1, 5, 0, 3]
  const assignments = (table: MaglevTable, n: number) =>
    Array.from({ length: n }, (_, i) => tableLookup(table, BigInt(i)))

  it('Basic: six hosts in a table of 7', () => {
    const table = new MaglevTable(six, 7)
    expect(assignments(table, 21)).toEqual(Array.from({ length: 21 }, (_, i) => basic[i % 7]))
  })

  it('BasicStability: the table does not depend on the order of the hosts', () => {
    const shuffled = [six[3], six[5], six[0], six[4], six[1], six[2]]
    const table = new MaglevTable(shuffled, 7)
    expect(assignments(table, 7).map((i) => shuffled[i].hostPort)).toEqual(basic.map((i) => six[i].hostPort))
  })

  it('Weighted: weights 1 and 2 in a table of 17', () => {
    const table = new MaglevTable(hosts([90, 91], [1, 2]), 17)
    expect(assignments(table, 17)).toEqual([1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1])
    expect(table.slots.filter((s) => s === 0).length).toBe(6)
  })

  it('LocalityWeightedSameLocalityWeights: equal localities outweigh host weights', () => {
    // :90 (weight 1) alone in zone A, :91 (weight 2) alone in zone B, localities 1:1.
    const table = new MaglevTable(hosts([90, 91], [1, 2]), 17, [(1 * (1 / 2)) / 1, (2 * (1 / 2)) / 2])
    expect(assignments(table, 17)).toEqual([1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1])
  })

  it('LocalityWeightedDifferentLocalityWeights: localities 8 : 0 : 2, the weight-0 one left out', () => {
    // :90 in A (8), :91 in C (2), :92 in B (0): Envoy leaves :92 out of the normalized hosts.
    const table = new MaglevTable(hosts([90, 91], [1, 2]), 17, [(1 * (8 / 10)) / 1, (2 * (2 / 10)) / 2])
    expect(assignments(table, 17)).toEqual([1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0])
  })

  it('the default table has 65537 entries, filled evenly for equal weights', () => {
    expect(DEFAULT_TABLE_SIZE).toBe(65537)
    const table = new MaglevTable(six, DEFAULT_TABLE_SIZE)
    const counts = new Array<number>(6).fill(0)
    for (const s of table.slots) counts[s]++
    expect(Math.min(...counts)).toBe(Math.floor(65537 / 6))
    expect(Math.max(...counts)).toBe(Math.ceil(65537 / 6))
  })
})

describe('consistent hashing behaviour', () => {
  const four = hosts([9080, 9081, 9082, 9083])
  const keys = Array.from({ length: 5000 }, (_, i) => xxHash64(`session-${i}`))

  it('removing a host moves its keys and few others (ring and table)', () => {
    const survivors = four.slice(0, 3)
    // The ring rescales (4 × 256 points become 3 × 342), so it moves more keys than the table does.
    for (const [full, reduced, keptAtLeast] of [
      [new HashRing(four, 1024), new HashRing(survivors, 1024), 0.8],
      [new MaglevTable(four, 65537), new MaglevTable(survivors, 65537), 0.9],
    ] as const) {
      const pick = (table: HashRing | MaglevTable, h: bigint) =>
        table instanceof HashRing ? ringLookup(table, h) : tableLookup(table, h)
      let kept = 0
      let onSurvivors = 0
      for (const key of keys) {
        const before = pick(full, key)
        if (before === 3) continue
        onSurvivors++
        if (pick(reduced, key) === before) kept++
      }
      expect(kept / onSurvivors).toBeGreaterThan(keptAtLeast)
    }
  })

  it('the balancers hash the request key; without one they pick at random', () => {
    const key: HashKeyModel = { kind: 'header', name: 'x-user' }
    const ring = new RingHash(key, 12, scripted(0.999, 0))
    const table = new Maglev(key, 7, scripted(0, 0.5))
    // The key "foo": Envoy's xxHash64("foo") = 3728699739546630719.
    expect(ring.pick(six(), request({ 'x-user': 'foo' })).hostPort).toBe(
      six()[ringLookup(new HashRing(six(), 12), 3728699739546630719n)].hostPort,
    )
    // Slot 3728699739546630719 mod 7 of the Basic table.
    const fooSlot = Number(3728699739546630719n % 7n)
    expect(table.pick(six(), request({ 'x-user': 'foo' })).hostPort).toBe(
      six()[[2, 4, 0, 1, 5, 0, 3][fooSlot]].hostPort,
    )
    // No key: a random 64-bit value (scripted to 0.999 × 2^32 in the high half, 0 in the low).
    expect(ring.pick(six(), request()).hostPort).toBe(
      six()[ringLookup(new HashRing(six(), 12), BigInt(Math.floor(0.999 * 2 ** 32)) << 32n)].hostPort,
    )
    // No key: 0 in the high half, 0.5 × 2^32 in the low: slot 2^31 mod 7.
    expect(table.pick(six(), request()).hostPort).toBe(
      six()[[2, 4, 0, 1, 5, 0, 3][Number(2n ** 31n % 7n)]].hostPort,
    )
  })

  it("a host set hands the ring its hosts locality by locality, with Envoy's locality weights", () => {
    const fake = (hostPort: string, locality: string, localityWeight: number, weight: number) =>
      ({ hostPort, locality, localityWeight, weight, ejected: false, activeRequests: 0 }) as HostSetEndpoint
    // Interleaved on input; Envoy's hostsPerLocality groups them: a1, a2, then b1, b2.
    const a1 = fake('10.0.0.1:80', 'a', 1, 1)
    const b1 = fake('10.0.0.2:80', 'b', 2, 1)
    const a2 = fake('10.0.0.3:80', 'a', 1, 2)
    const b2 = fake('10.0.0.4:80', 'b', 2, 2)
    const model: LoadBalancerModel = {
      kind: 'RING_HASH',
      hashKey: { kind: 'header', name: 'x-user' },
      minimumRingSize: 9,
    }
    const set = new HostSet(0, [a1, b1, a2, b2], model, false)
    const grouped = [a1, a2, b1, b2]
    const expected = new HashRing(grouped, 9, [
      (1 * (1 / 3)) / 3,
      (2 * (1 / 3)) / 3,
      (1 * (2 / 3)) / 3,
      (2 * (2 / 3)) / 3,
    ])
    for (let i = 0; i < 200; i++) {
      const user = `user-${i}`
      expect(set.pick(request({ 'x-user': user }))?.hostPort).toBe(
        grouped[ringLookup(expected, xxHash64(user))].hostPort,
      )
    }
  })

  function six(): LbEndpoint[] {
    return hosts([90, 91, 92, 93, 94, 95])
  }
})
