// google.protobuf.Struct on the wire: byte for byte as protobufjs wrote and read it (fixtures it produced), real Istio headers, and round trips of any value.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeExchangePayload,
  decodePeerStruct,
  encodeExchangePayload,
  encodePeerStruct,
  type LocalPeer,
} from './peer-metadata.ts'
import fixtures from './peer-metadata-fixtures.json' with { type: 'json' }
import { decodeStruct, type EncodableValue, encodeStruct, StructDecodeError } from './protobuf-struct.ts'
import type { WorkloadMetadata } from './workload-metadata.ts'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary', maxLength: 200 }),
)
const workload = fc.record({
  workloadName: text,
  namespace: text,
  canonicalService: text,
  canonicalRevision: text,
  app: text,
  version: text,
  clusterId: text,
  serviceAccount: text,
})
const peer = fc.record({ id: text, instanceName: text, meshId: text, metadata: workload })

/** What a receiver reads of `local` (a lone surrogate reads back as U+FFFD, as UTF-8 cannot carry it). */
function expectedOf(local: LocalPeer): WorkloadMetadata {
  const wellFormed = (s: string): string => Buffer.from(s, 'utf8').toString('utf8')
  const m = local.metadata
  return {
    workloadName: wellFormed(m.workloadName),
    namespace: wellFormed(m.namespace),
    canonicalService: wellFormed(m.canonicalService),
    canonicalRevision: wellFormed(m.canonicalRevision),
    app: wellFormed(m.app),
    version: wellFormed(m.version),
    clusterId: wellFormed(m.clusterId),
    serviceAccount: wellFormed(m.serviceAccount),
  }
}

describe('peer metadata against protobufjs 7.6.6 (fixtures it produced)', () => {
  it('encodes this node and its TCP exchange payload to the same bytes', () => {
    expect(fixtures.encode.length).toBeGreaterThan(0)
    for (const { peer: local, struct, exchange } of fixtures.encode) {
      expect(hex(encodePeerStruct(local))).toBe(struct)
      expect(hex(encodeExchangePayload(local))).toBe(exchange)
    }
  })

  it('reads real Istio headers (bookinfo, Istio 1.5 and 1.14) as it did', () => {
    for (const { source, base64, expected } of fixtures.istio)
      expect({ source, read: decodePeerStruct(Buffer.from(base64, 'base64')) }).toEqual({
        source,
        read: expected,
      })
  })

  it('reads mutated and truncated encodings as it did, failures included', () => {
    for (const { kind, hex: bytes, expected } of fixtures.malformed) {
      const input = Buffer.from(bytes, 'hex')
      const read = kind === 'struct' ? decodePeerStruct(input) : decodeExchangePayload(input)
      expect({ kind, bytes, read: read ?? null }).toEqual({ kind, bytes, read: expected })
    }
    expect(fixtures.malformed.filter((c) => c.expected === null).length).toBeGreaterThan(0)
  })
})

describe('round trips', () => {
  it('any node reads back as the workload it described, from the header and the TCP payload', () => {
    fc.assert(
      fc.property(peer, (local) => {
        expect(decodePeerStruct(Buffer.from(encodePeerStruct(local)))).toEqual(expectedOf(local))
        expect(decodeExchangePayload(encodeExchangePayload(local))).toEqual(expectedOf(local))
      }),
      { numRuns: 2000 },
    )
  })

  it('any Struct of strings and nested Structs reads back', () => {
    const key = fc.string({ unit: 'grapheme', maxLength: 20 })
    const { struct } = fc.letrec<{ struct: [string, EncodableValue][]; value: EncodableValue }>((tie) => ({
      struct: fc.uniqueArray(fc.tuple(key, tie('value')), { selector: ([k]) => k, maxLength: 6 }),
      value: fc.oneof({ depthSize: 'small' }, fc.string({ unit: 'grapheme' }), tie('struct')),
    }))
    const plain = (entries: readonly (readonly [string, EncodableValue])[]): unknown =>
      entries.map(([k, v]) => [k, typeof v === 'string' ? { stringValue: v } : { structValue: plain(v) }])
    const read = (fields: ReturnType<typeof decodeStruct>): unknown =>
      [...fields].map(([k, v]) => [
        k,
        v?.structValue === undefined ? v : { structValue: read(v.structValue) },
      ])
    fc.assert(
      fc.property(struct, (entries) => {
        expect(read(decodeStruct(encodeStruct(entries)))).toEqual(plain(entries))
      }),
      { numRuns: 1000 },
    )
  })

  it('a cut encoding fails as a StructDecodeError or reads as a workload, never anything else', () => {
    const full = encodePeerStruct(fixtures.encode[0].peer)
    let failed = 0
    for (let end = 0; end < full.length; end++) {
      try {
        decodeStruct(full.subarray(0, end))
      } catch (err) {
        expect(err).toBeInstanceOf(StructDecodeError)
        failed++
      }
    }
    expect(failed).toBeGreaterThan(0)
  })

  it('nesting deeper than 100 levels is refused, as protoc and protobufjs refuse it', () => {
    let inner: EncodableValue = 'v'
    for (let i = 0; i < 120; i++) inner = [['k', inner]]
    expect(() => decodeStruct(encodeStruct([['k', inner]]))).toThrow(StructDecodeError)
  })
})
