// Envoy's request-path normalization (RFC 3986 canonical path, merged slashes, unescaped slashes) as Istio's meshConfig.pathNormalization selects it.

/**
 * Istio's `meshConfig.pathNormalization.normalization` (mesh/v1alpha1/config.proto ProxyPathNormalization);
 * DEFAULT means BASE.
 */
export type PathNormalizationType = 'DEFAULT' | 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES'

/** The HttpConnectionManager fields Istio sets for a normalization type. */
interface NormalizationSettings {
  /** Envoy's `normalize_path`: PathUtil::canonicalPath. */
  readonly normalizePath: boolean
  /** Envoy's `merge_slashes`. */
  readonly mergeSlashes: boolean
  /** Envoy's `path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD` (else KEEP_UNCHANGED). */
  readonly unescapeSlashes: boolean
}

/** As pilot's buildHTTPConnectionManager (pilot/pkg/networking/core/listener.go, "Setup normalization"). */
const settingsByType: Readonly<Record<PathNormalizationType, NormalizationSettings>> = {
  NONE: { normalizePath: false, mergeSlashes: false, unescapeSlashes: false },
  DEFAULT: { normalizePath: true, mergeSlashes: false, unescapeSlashes: false },
  BASE: { normalizePath: true, mergeSlashes: false, unescapeSlashes: false },
  MERGE_SLASHES: { normalizePath: true, mergeSlashes: true, unescapeSlashes: false },
  DECODE_AND_MERGE_SLASHES: { normalizePath: true, mergeSlashes: true, unescapeSlashes: true },
}

const SLASH = 0x2f
const BACKSLASH = 0x5c
const DOT = 0x2e
const PERCENT = 0x25
const QUESTION = 0x3f
const HASH = 0x23

// How the canonicalizer treats each byte of a path: Chromium's url_canon_path.cc kPathCharLookup, the
// table of the googleurl that Envoy's PathUtil::canonicalPath calls (url::CanonicalizePath).
/** Copied as it is. */
const PASS = 0
/** Handled by a rule of its own: `.`, `\`, `%`, and every class below. */
const SPECIAL = 1
/** Written percent-encoded (uppercase hex). */
const ESCAPE = 2 | SPECIAL
/** Decoded when it arrives percent-encoded: the unreserved characters. */
const UNESCAPE = 4
/** Makes the path invalid (NUL, raw or `%00`): Envoy answers 400. */
const INVALID = 8 | SPECIAL

const charClass: Uint8Array = (() => {
  const table = new Uint8Array(256).fill(ESCAPE)
  table[0] = INVALID
  for (const c of "!$&'()*+,/:;=?@[]") table[c.charCodeAt(0)] = PASS
  for (const c of '-_~') table[c.charCodeAt(0)] = UNESCAPE
  for (let c = 0x30; c <= 0x39; c++) table[c] = UNESCAPE
  for (let c = 0x41; c <= 0x5a; c++) table[c] = UNESCAPE
  for (let c = 0x61; c <= 0x7a; c++) table[c] = UNESCAPE
  table[DOT] = SPECIAL
  return table
})()

/**
 * Normalizes request targets (path and query) as Envoy's HttpConnectionManager does before routing
 * (ConnectionManagerUtility::maybeNormalizePath): a fragment is rejected, escaped slashes are decoded when
 * configured, the path is canonicalized, then slashes are merged; the query is never touched.
 */
export class PathNormalizer {
  readonly type: PathNormalizationType
  readonly #settings: NormalizationSettings

  constructor(type: PathNormalizationType) {
    this.type = type
    this.#settings = settingsByType[type]
  }

  /**
   * The target to route and forward: `url` itself (the same string) when it needs no change, which a
   * single scan decides for most requests; undefined when Envoy rejects it (400 path_normalization_failed).
   * A target that does not start with `/` (absolute form, `*`) is left as it is.
   */
  normalize(url: string): string | undefined {
    const settings = this.#settings
    if (!this.#needsWork(url)) return url
    // Envoy's http_reject_path_with_fragment (on by default), whatever the normalization type.
    if (url.indexOf('#') !== -1) return undefined
    if (!settings.normalizePath || url.charCodeAt(0) !== SLASH) return url
    const q = url.indexOf('?')
    let path = q === -1 ? url : url.slice(0, q)
    if (settings.unescapeSlashes) path = unescapeSlashes(path)
    const canonical = canonicalPath(path)
    if (canonical === undefined) return undefined
    const normalized = settings.mergeSlashes ? mergeSlashes(canonical) : canonical
    return q === -1 ? normalized : normalized + url.slice(q)
  }

  /** False when no rule can change `url`: no fragment, and a path of plain characters with no dot segment. */
  #needsWork(url: string): boolean {
    const { normalizePath, mergeSlashes } = this.#settings
    let previous = 0
    let i = 0
    if (normalizePath) {
      for (; i < url.length; i++) {
        const c = url.charCodeAt(i)
        if (c === QUESTION) break
        if (c > 0xff) return true
        const cls = charClass[c]
        if (cls === SPECIAL) {
          // A dot matters only where it may start a `.` or `..` segment.
          if (previous === SLASH) return true
        } else if ((cls & SPECIAL) !== 0) return true
        else if (c === SLASH && previous === SLASH && mergeSlashes) return true
        previous = c
      }
    }
    for (; i < url.length; i++) if (url.charCodeAt(i) === HASH) return true
    return false
  }
}

/**
 * Envoy's PathUtil::canonicalPath for a path without its query (url::CanonicalizePath): `\` becomes `/`,
 * `.` and `..` segments (also as `%2e`) are resolved, percent-encoded unreserved characters are decoded,
 * other escapes are kept as written (hex case preserved), characters not allowed in a path are
 * percent-encoded, a missing leading `/` is added. Undefined when the path holds a NUL (raw or `%00`).
 */
export function canonicalPath(path: string): string | undefined {
  if (path.length === 0) return '/'
  const end = path.length
  let out = isSlash(path.charCodeAt(0)) ? '' : '/'
  let valid = true
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i)
    if (c > 0xff) {
      // Only a decoder that is not latin1 makes these; written as their UTF-8 bytes, escaped.
      const char = String.fromCodePoint(path.codePointAt(i) ?? c)
      for (const byte of Buffer.from(char)) out += escapeByte(byte)
      i += char.length - 1
      continue
    }
    const cls = charClass[c]
    if ((cls & SPECIAL) === 0) {
      out += path[i]
      continue
    }
    const dotLength = dotAt(path, i)
    if (dotLength > 0) {
      // A dot after a slash may start a `.` or `..` segment; anywhere else it is part of a name.
      const segment = out.charCodeAt(out.length - 1) === SLASH ? dotSegmentAt(path, i + dotLength) : undefined
      if (segment === undefined) {
        out += '.'
        i += dotLength - 1
      } else {
        if (segment.up) out = backUpToPreviousSlash(out)
        i += dotLength + segment.consumed - 1
      }
    } else if (c === BACKSLASH) {
      out += '/'
    } else if (c === PERCENT) {
      const value = i + 3 <= end ? hexByte(path.charCodeAt(i + 1), path.charCodeAt(i + 2)) : -1
      if (value === -1) {
        // Not an escape: the `%` passes as it is (Chromium's permissive choice).
        out += '%'
        continue
      }
      const decoded = charClass[value]
      if (decoded === UNESCAPE) out += String.fromCharCode(value)
      else {
        if (decoded === INVALID) valid = false
        out += path.slice(i, i + 3)
      }
      i += 2
    } else if (cls === INVALID) {
      valid = false
      out += escapeByte(c)
    } else {
      out += escapeByte(c)
    }
  }
  return valid ? out : undefined
}

/** Envoy's PathTransformer::mergeSlashes: runs of `/` in the path become one; the query is left alone. */
export function mergeSlashes(url: string): string {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  if (path.indexOf('//') === -1) return url
  const prefix = path.charCodeAt(0) === SLASH ? '/' : ''
  const suffix = path.charCodeAt(path.length - 1) === SLASH ? '/' : ''
  const segments = path.split('/').filter((s) => s !== '')
  return prefix + segments.join('/') + suffix + (q === -1 ? '' : url.slice(q))
}

const escapedSlash = /%2f|%5c/gi

/** Envoy's PathUtil::unescapeSlashes (UNESCAPE_AND_FORWARD): `%2F` becomes `/` and `%5C` becomes `\` in the path. */
export function unescapeSlashes(path: string): string {
  if (path.indexOf('%') === -1) return path
  return path.replace(escapedSlash, unescapeSlash)
}

function unescapeSlash(escaped: string): string {
  return escaped[1] === '2' ? '/' : '\\'
}

/** A `.` (`up` false) or `..` segment, and how many input characters follow its first dot. */
interface DotSegment {
  readonly up: boolean
  readonly consumed: number
}

const currentAtEnd: DotSegment = { up: false, consumed: 0 }
const currentBeforeSlash: DotSegment = { up: false, consumed: 1 }

/**
 * Chromium's ClassifyAfterDot, for the dot that ends at `after`: a `.` or `..` segment with the second dot
 * and slash it takes, or undefined when the dot is part of an ordinary name (`.x`, `...`, `..x`).
 */
function dotSegmentAt(path: string, after: number): DotSegment | undefined {
  const end = path.length
  if (after === end) return currentAtEnd
  if (isSlash(path.charCodeAt(after))) return currentBeforeSlash
  const second = dotAt(path, after)
  if (second > 0) {
    const afterSecond = after + second
    if (afterSecond === end) return { up: true, consumed: second }
    if (isSlash(path.charCodeAt(afterSecond))) return { up: true, consumed: second + 1 }
  }
  return undefined
}

/** Drops the last segment of `out` (which ends with `/`), never above the leading `/`. */
function backUpToPreviousSlash(out: string): string {
  if (out.length <= 1) return out
  const slash = out.lastIndexOf('/', out.length - 2)
  return out.slice(0, Math.max(slash, 0) + 1)
}

/** The length of the dot at `i`: 1 for `.`, 3 for `%2e` / `%2E`, 0 for anything else. */
function dotAt(path: string, i: number): number {
  const c = path.charCodeAt(i)
  if (c === DOT) return 1
  if (c === PERCENT && i + 3 <= path.length && path.charCodeAt(i + 1) === 0x32 /* 2 */) {
    const e = path.charCodeAt(i + 2)
    if (e === 0x65 || e === 0x45) return 3
  }
  return 0
}

function isSlash(c: number): boolean {
  return c === SLASH || c === BACKSLASH
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

/** The byte two hex digits spell, or -1. */
function hexByte(high: number, low: number): number {
  const h = hexDigit(high)
  const l = hexDigit(low)
  return h === -1 || l === -1 ? -1 : h * 16 + l
}

function escapeByte(c: number): string {
  return `%${c < 0x10 ? '0' : ''}${c.toString(16).toUpperCase()}`
}
