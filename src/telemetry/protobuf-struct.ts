// google.protobuf.Struct (and the Any that wraps one) on the wire: the encoder and decoder Istio's peer metadata needs, byte for byte as protobufjs 7 wrote and read them.

/**
 * A decoded google.protobuf.Value: its string and struct kinds (the others are read and checked, then
 * dropped). Like protobufjs, a field that appears twice keeps its last value, and a Value holding two
 * kinds keeps both.
 */
export interface StructValue {
  stringValue?: string
  structValue?: StructFields
}

/** A Struct's `fields` map (a map entry without a value is null, as protobufjs reads it). */
export type StructFields = Map<string, StructValue | null>

/** A value to encode: a string, or a nested Struct of entries (written in the order given). */
export type EncodableValue = string | readonly (readonly [string, EncodableValue])[]

/** protoc's and protobufjs's CodedInputStream default recursion limit (protobufjs util.recursionLimit). */
const RECURSION_LIMIT = 100

/** A decode failure (protobufjs throws a RangeError or an Error; callers only need to know it failed). */
export class StructDecodeError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'StructDecodeError'
  }
}

const outOfRange = (): StructDecodeError => new StructDecodeError('index out of range')

/**
 * Reads protobuf's wire format as protobufjs's BufferReader does (protobufjs src/reader.js and
 * reader_buffer.js), quirks included, so that every input decodes, or fails, exactly as it did: a string
 * longer than what is left of its message is cut at the message's end; a varint's sixth to tenth bytes are
 * skipped unread.
 */
class WireReader {
  pos = 0
  /** The end of the message being read (nested messages lower it, as protobufjs's `r.len`). */
  len: number
  readonly #buf: Buffer

  constructor(buf: Buffer) {
    this.#buf = buf
    this.len = buf.length
  }

  uint32(): number {
    const buf = this.#buf
    if (this.len - this.pos < 5) {
      if (this.pos >= this.len) throw outOfRange()
      if (buf[this.pos] >= 128) return this.#varint32NearEnd()
    }
    let value = (buf[this.pos] & 127) >>> 0
    if (buf[this.pos++] < 128) return value
    value = (value | ((buf[this.pos] & 127) << 7)) >>> 0
    if (buf[this.pos++] < 128) return value
    value = (value | ((buf[this.pos] & 127) << 14)) >>> 0
    if (buf[this.pos++] < 128) return value
    value = (value | ((buf[this.pos] & 127) << 21)) >>> 0
    if (buf[this.pos++] < 128) return value
    value = (value | ((buf[this.pos] & 15) << 28)) >>> 0
    if (buf[this.pos++] < 128) return value
    this.pos += 5
    if (this.pos > this.len) {
      this.pos = this.len
      throw outOfRange()
    }
    return value
  }

  #varint32NearEnd(): number {
    let value = 0
    for (let i = 0; i < 4; ++i) {
      if (this.pos >= this.len) throw outOfRange()
      const b = this.#buf[this.pos++]
      value = (value | ((b & 127) << (i * 7))) >>> 0
      if (b < 128) return value
    }
    throw outOfRange()
  }

  string(): string {
    const length = this.uint32()
    const start = this.pos
    this.pos = Math.min(this.pos + length, this.len)
    return this.#buf.toString('utf8', start, this.pos)
  }

  bytes(): Buffer {
    const length = this.uint32()
    const start = this.pos
    const end = this.pos + length
    if (end > this.len) throw outOfRange()
    this.pos += length
    return this.#buf.subarray(start, end)
  }

  skip(length?: number): void {
    if (length !== undefined) {
      if (this.pos + length > this.len) throw outOfRange()
      this.pos += length
      return
    }
    do {
      if (this.pos >= this.len) throw outOfRange()
    } while (this.#buf[this.pos++] & 128)
  }

  skipType(wireType: number, depth: number): void {
    if (depth > RECURSION_LIMIT) throw new StructDecodeError('maximum nesting depth exceeded')
    switch (wireType) {
      case 0:
        this.skip()
        break
      case 1:
        this.skip(8)
        break
      case 2:
        this.skip(this.uint32())
        break
      case 3:
        for (let type = this.uint32() & 7; type !== 4; type = this.uint32() & 7)
          this.skipType(type, depth + 1)
        break
      case 5:
        this.skip(4)
        break
      default:
        throw new StructDecodeError(`invalid wire type ${wireType}`)
    }
  }
}

/**
 * Runs `read` over a nested message of `length` bytes (or the rest, when undefined), as protobufjs's
 * generated decoders bound one: the message must end exactly at its length.
 */
function nested<T>(r: WireReader, length: number | undefined, depth: number, read: (end: number) => T): T {
  if (depth > RECURSION_LIMIT) throw new StructDecodeError('maximum nesting depth exceeded')
  if (length === undefined) return read(r.len)
  const end = r.pos + length
  if (end > r.len) throw outOfRange()
  const outer = r.len
  r.len = end
  const message = read(end)
  if (r.pos !== end) throw outOfRange()
  r.len = outer
  return message
}

function readStruct(r: WireReader, length: number | undefined, depth: number): StructFields {
  return nested(r, length, depth, (end) => {
    const fields: StructFields = new Map()
    while (r.pos < end) {
      const tag = r.uint32()
      if (tag >>> 3 !== 1) {
        r.skipType(tag & 7, depth)
        continue
      }
      // A map entry: key 1, value 2 (protobufjs's map decoding, which bounds the entry the same way).
      const entryEnd = r.uint32() + r.pos
      if (entryEnd > r.len) throw outOfRange()
      r.len = entryEnd
      let key = ''
      let value: StructValue | null = null
      while (r.pos < entryEnd) {
        const entryTag = r.uint32()
        switch (entryTag >>> 3) {
          case 1:
            key = r.string()
            break
          case 2:
            value = readValue(r, r.uint32(), depth + 1)
            break
          default:
            r.skipType(entryTag & 7, depth)
        }
      }
      if (r.pos !== entryEnd) throw outOfRange()
      r.len = end
      fields.set(key, value)
    }
    return fields
  })
}

function readValue(r: WireReader, length: number, depth: number): StructValue {
  return nested(r, length, depth, (end) => {
    const value: StructValue = {}
    while (r.pos < end) {
      const tag = r.uint32()
      switch (tag >>> 3) {
        case 1: // null_value (an enum)
        case 4: // bool_value
          r.uint32()
          break
        case 2: // number_value (a double)
          r.skip(8)
          break
        case 3:
          value.stringValue = r.string()
          break
        case 5:
          value.structValue = readStruct(r, r.uint32(), depth + 1)
          break
        case 6:
          readList(r, r.uint32(), depth + 1)
          break
        default:
          r.skipType(tag & 7, depth)
      }
    }
    return value
  })
}

function readList(r: WireReader, length: number, depth: number): void {
  nested(r, length, depth, (end) => {
    while (r.pos < end) {
      const tag = r.uint32()
      if (tag >>> 3 === 1) readValue(r, r.uint32(), depth + 1)
      else r.skipType(tag & 7, depth)
    }
  })
}

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** A serialized Struct's fields; throws StructDecodeError where protobufjs's decode threw. */
export function decodeStruct(bytes: Uint8Array): StructFields {
  return readStruct(new WireReader(asBuffer(bytes)), undefined, 0)
}

/** A serialized google.protobuf.Any's type URL and value (each undefined when absent); throws where protobufjs threw. */
export function decodeAny(bytes: Uint8Array): { typeUrl?: string; value?: Buffer } {
  const r = new WireReader(asBuffer(bytes))
  const any: { typeUrl?: string; value?: Buffer } = {}
  while (r.pos < r.len) {
    const tag = r.uint32()
    switch (tag >>> 3) {
      case 1:
        any.typeUrl = r.string()
        break
      case 2:
        any.value = r.bytes()
        break
      default:
        r.skipType(tag & 7, 0)
    }
  }
  return any
}

/** Appends protobuf's varint of a length or tag (below 2^32). */
function pushVarint(out: number[], value: number): void {
  let v = value >>> 0
  while (v > 127) {
    out.push((v & 127) | 128)
    v >>>= 7
  }
  out.push(v)
}

function pushBytes(out: number[], tag: number, bytes: ArrayLike<number>): void {
  pushVarint(out, tag)
  pushVarint(out, bytes.length)
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i])
}

function structBytes(entries: readonly (readonly [string, EncodableValue])[]): number[] {
  const out: number[] = []
  for (const [key, value] of entries) {
    // Value: string_value is field 3, struct_value field 5 (google/protobuf/struct.proto).
    const valueBytes: number[] = []
    if (typeof value === 'string') pushBytes(valueBytes, (3 << 3) | 2, Buffer.from(value, 'utf8'))
    else pushBytes(valueBytes, (5 << 3) | 2, structBytes(value))
    // The map entry: key (1) always, then value (2), as protobufjs writes a map field.
    const entry: number[] = []
    pushBytes(entry, (1 << 3) | 2, Buffer.from(key, 'utf8'))
    pushBytes(entry, (2 << 3) | 2, valueBytes)
    pushBytes(out, (1 << 3) | 2, entry)
  }
  return out
}

/** A Struct of `entries` serialized as protobufjs serialized it (entries in the order given). */
export function encodeStruct(entries: readonly (readonly [string, EncodableValue])[]): Uint8Array {
  return Uint8Array.from(structBytes(entries))
}

/** A google.protobuf.Any of `typeUrl` holding `value`. */
export function encodeAny(typeUrl: string, value: Uint8Array): Uint8Array {
  const out: number[] = []
  pushBytes(out, (1 << 3) | 2, Buffer.from(typeUrl, 'utf8'))
  pushBytes(out, (2 << 3) | 2, value)
  return Uint8Array.from(out)
}
