import { describe, expect, it } from 'vitest'
import {
  canonicalPath,
  mergeSlashes,
  type PathNormalizationType,
  PathNormalizer,
} from './path-normalization.ts'

// Vectors from Envoy's test/common/http/path_utility_test.cc (PathUtilityTest, PathTransformationTest).
describe('canonicalPath (Envoy PathUtil::canonicalPath)', () => {
  it.each(['/xyz', '/x/y/z'])('AlreadyNormalPaths: %s is unchanged', (path) => {
    expect(canonicalPath(path)).toBe(path)
  })

  it.each(['/xyz/.%00../abc', '/xyz/%00.%00./abc', '/xyz/AAAAA%%0000/abc'])(
    'InvalidPaths: %s is rejected',
    (path) => {
      expect(canonicalPath(path)).toBeUndefined()
    },
  )

  it.each([
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['a/b/../c', '/a/c'],
    ['/a/b/../../../../c', '/c'],
    ['/a/..\\c', '/c'],
    ['/%c0%af', '/%c0%af'],
    ['/%5c%25', '/%5c%25'],
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2E./c', '/a/c'],
    ['/a/b/%2E/c', '/a/b/c'],
    ['..', '/'],
    ['/../a/b', '/a/b'],
    ['/./a/b', '/a/b'],
  ])('NormalizeValidPaths: %s → %s', (path, expected) => {
    expect(canonicalPath(path)).toBe(expected)
  })

  it.each([
    ['/A/B/C', '/A/B/C'],
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2e%2e/c', '/a/c'],
    ['/a/%2F%2f/c', '/a/%2F%2f/c'],
  ])('NormalizeCasePath: %s → %s', (path, expected) => {
    expect(canonicalPath(path)).toBe(expected)
  })

  // url_canon_path.cc's table: characters not allowed in a path are escaped (uppercase hex).
  it('percent-encodes characters a path may not hold raw', () => {
    expect(canonicalPath('/a"b<c>d^e`f{g|h}i\x7f\xe9')).toBe('/a%22b%3Cc%3Ed%5Ee%60f%7Bg%7Ch%7Di%7F%E9')
  })
})

describe('mergeSlashes (Envoy PathTransformer::mergeSlashes)', () => {
  it.each([
    ['', ''],
    ['a//b/c', 'a/b/c'],
    ['/a//b/c/', '/a/b/c/'],
    ['a//b/c/', 'a/b/c/'],
    ['/a', '/a'],
    ['//a/b/c', '/a/b/c'],
    ['/a//b/c', '/a/b/c'],
    ['/a/b/c//', '/a/b/c/'],
    ['/a///b/c', '/a/b/c'],
    ['/a////b/c', '/a/b/c'],
    ['/a//b?a=///c', '/a/b?a=///c'],
    ['/a//b?', '/a/b?'],
    ['//a/?b', '/a/?b'],
  ])('MergeSlashes: %j → %j', (path, expected) => {
    expect(mergeSlashes(path)).toBe(expected)
  })
})

// Istio's tests/integration/security/normalization_test.go (TestNormalization): what the app receives per
// meshConfig.pathNormalization type. `/app#foo` is left out: its client drops the fragment before sending.
const istioCases: Record<Exclude<PathNormalizationType, 'DEFAULT'>, [string, string][]> = {
  NONE: [
    ['/', '/'],
    ['/app/', '/app/'],
    ['/app/../admin', '/app/../admin'],
    ['/app', '/app'],
    ['/app//', '/app//'],
    ['/app/%2f', '/app/%2f'],
    ['/app%2f/', '/app%2f/'],
    ['/xyz%30..//abc', '/xyz%30..//abc'],
    ['/app/%2E./admin', '/app/%2E./admin'],
    ['/app\\admin', '/app\\admin'],
    ['/app/\\/\\/\\admin', '/app/\\/\\/\\admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc'],
    ['/app//../admin', '/app//../admin'],
    ['/app//../../admin', '/app//../../admin'],
  ],
  BASE: [
    ['/', '/'],
    ['/app/', '/app/'],
    ['/app/../admin', '/admin'],
    ['/app', '/app'],
    ['/app//', '/app//'],
    ['/app/%2f', '/app/%2f'],
    ['/app%2f/', '/app%2f/'],
    ['/xyz%30..//abc', '/xyz0..//abc'],
    ['/app/%2E./admin', '/admin'],
    ['/app\\admin', '/app/admin'],
    ['/app/\\/\\/\\admin', '/app//////admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc'],
    ['/app//../admin', '/app/admin'],
    ['/app//../../admin', '/admin'],
  ],
  MERGE_SLASHES: [
    ['/', '/'],
    ['/app/', '/app/'],
    ['/app/../admin', '/admin'],
    ['/app', '/app'],
    ['/app//', '/app/'],
    ['/app/%2f', '/app/%2f'],
    ['/app%2f/', '/app%2f/'],
    ['/xyz%30..//abc', '/xyz0../abc'],
    ['/app/%2E./admin', '/admin'],
    ['/app\\admin', '/app/admin'],
    ['/app/\\/\\/\\admin', '/app/admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc'],
    ['/app//../admin', '/app/admin'],
    ['/app//../../admin', '/admin'],
  ],
  DECODE_AND_MERGE_SLASHES: [
    ['/', '/'],
    ['/app/', '/app/'],
    ['/app/../admin', '/admin'],
    ['/app', '/app'],
    ['/app//', '/app/'],
    ['/app/%2f', '/app/'],
    ['/app%2f/', '/app/'],
    ['/xyz%30..//abc', '/xyz0../abc'],
    ['/app/%2E./admin', '/admin'],
    ['/app\\admin', '/app/admin'],
    ['/app/\\/\\/\\admin', '/app/admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/app/admin/abc'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/app/admin/abc'],
    ['/app//../admin', '/app/admin'],
    ['/app//../../admin', '/admin'],
    ['/%c0%2e%c0%2e/admin', '/%c0.%c0./admin'],
    ['/%c0%2fadmin', '/%c0/admin'],
    // NotNormalized
    ['/0x2e0x2e/admin', '/0x2e0x2e/admin'],
    ['/%25c0%25ae%25c1%259cadmin', '/%25c0%25ae%25c1%259cadmin'],
    ['/%252e%252e%252fadmin', '/%252e%252e%252fadmin'],
    ['/%c1%9cadmin', '/%c1%9cadmin'],
    ['/%c0%ae%c0%ae/admin', '/%c0%ae%c0%ae/admin'],
    ['/.../admin', '/.../admin'],
    ['/..../admin', '/..../admin'],
    ['/..;/admin', '/..;/admin'],
    ['/;/admin', '/;/admin'],
    ['/admin;a=b/xyz', '/admin;a=b/xyz'],
    ['/admin,a=b/xyz', '/admin,a=b/xyz'],
    ['/ADMIN', '/ADMIN'],
  ],
}

describe('PathNormalizer (Istio meshConfig.pathNormalization)', () => {
  for (const [type, cases] of Object.entries(istioCases)) {
    it.each(cases)(`${type}: %s → %s`, (input, expected) => {
      expect(new PathNormalizer(type as PathNormalizationType).normalize(input)).toBe(expected)
    })
  }

  it('DEFAULT is BASE', () => {
    const normalizer = new PathNormalizer('DEFAULT')
    for (const [input, expected] of istioCases.BASE) expect(normalizer.normalize(input)).toBe(expected)
  })

  // normalization_test.go "PercentEncoded": %01..%ff; only unreserved characters and slashes are decoded.
  it('DECODE_AND_MERGE_SLASHES decodes exactly the unreserved characters and slashes (%01..%ff)', () => {
    const normalizer = new PathNormalizer('DECODE_AND_MERGE_SLASHES')
    for (let byte = 1; byte <= 0xff; byte++) {
      const input = `/admin%${byte.toString(16).padStart(2, '0')}`
      const char = String.fromCharCode(byte)
      const decoded = /[A-Za-z0-9\-._~]/.test(char)
        ? `/admin${char}`
        : char === '/' || char === '\\'
          ? '/admin/'
          : input
      expect(normalizer.normalize(input), input).toBe(decoded)
    }
  })

  it('rejects %00 (Istio "Invalid": 400)', () => {
    for (const type of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
      expect(new PathNormalizer(type).normalize('/admin%00')).toBeUndefined()
    }
    // NONE does not canonicalize, so nothing rejects it.
    expect(new PathNormalizer('NONE').normalize('/admin%00')).toBe('/admin%00')
  })

  it('rejects a fragment whatever the type (Envoy http_reject_path_with_fragment)', () => {
    for (const type of ['NONE', 'BASE', 'DECODE_AND_MERGE_SLASHES'] as const) {
      const normalizer = new PathNormalizer(type)
      expect(normalizer.normalize('/app#foo')).toBeUndefined()
      expect(normalizer.normalize('/app?q=1#foo')).toBeUndefined()
    }
  })

  it('leaves the query alone', () => {
    const normalizer = new PathNormalizer('DECODE_AND_MERGE_SLASHES')
    expect(normalizer.normalize('/a/./b//c?x=/../y&z=%2f%41//')).toBe('/a/b/c?x=/../y&z=%2f%41//')
    expect(new PathNormalizer('BASE').normalize('/a?../b')).toBe('/a?../b')
  })

  it('leaves paths that need nothing unchanged', () => {
    const normalizer = new PathNormalizer('MERGE_SLASHES')
    for (const url of ['/', '/productpage', '/api/v1.2/items.json?x=1', '/a.b/c.d', '/a-b_c~d/@x:y;z=1']) {
      expect(normalizer.normalize(url)).toBe(url)
    }
  })

  it('leaves targets that are not origin-form as they are', () => {
    const normalizer = new PathNormalizer('BASE')
    expect(normalizer.normalize('*')).toBe('*')
    expect(normalizer.normalize('http://a/b/../c')).toBe('http://a/b/../c')
  })
})
