// fast-check arbitraries of hostile Istio YAML: valid resources with fields mutated to wrong types and odd values, and texts built to exhaust a parser.

import fc from 'fast-check'
import { parse } from 'yaml'
import * as istio from '../harness/istio.ts'

/** Resources that validate, to be mutated: every kind's common fields, regexes and header edits included. */
const baseYaml = [
  istio.serviceEntry({
    name: 'reviews',
    ports: [{ number: 9080, name: 'http', protocol: 'HTTP', targetPort: 8080 }],
    endpoints: istio.versionEndpoints('http', { v1: 8001, v2: 8002 }),
  }),
  istio.destinationRule({
    host: 'reviews',
    trafficPolicy: {
      connectionPool: {
        tcp: { maxConnections: 10, connectTimeout: '1s' },
        http: { http1MaxPendingRequests: 5 },
      },
      outlierDetection: { consecutive5xxErrors: 3, interval: '10s', baseEjectionTime: '30s' },
      loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } },
    },
    subsets: istio.versionSubsets('v1', 'v2'),
  }),
  istio.virtualService({
    hosts: ['reviews'],
    http: [
      {
        name: 'api',
        match: [
          { uri: { regex: '/api/v[0-9]+/.*' }, headers: { 'x-user': { exact: 'jason' } } },
          { queryParams: { debug: { regex: '^(1|true)$' } }, method: { exact: 'GET' } },
        ],
        rewrite: { uri: '/v2' },
        headers: { request: { set: { 'x-a': 'b' } }, response: { add: { 'x-c': 'd' }, remove: ['x-e'] } },
        timeout: '2s',
        retries: { attempts: 3, perTryTimeout: '1s', retryOn: '5xx,reset' },
        fault: { abort: { percentage: { value: 10 }, httpStatus: 503 } },
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 80 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 20 },
        ],
      },
    ],
  }),
  istio.sidecar({ egress: [{ port: 15080, protocol: 'HTTP', name: 'http' }] }),
  `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/*"]}}]
    to: [{operation: {methods: [GET], paths: ["/api/{*}/items/{**}"]}}]
    when: [{key: "request.headers[x-env]", values: [prod]}]
`,
  `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: PERMISSIVE}
  portLevelMtls: {8080: {mode: STRICT}}
`,
].map((text) => parse(text) as unknown)

/** Strings that have broken parsers and validators: durations, regex bombs, CR/LF, NUL, prototype keys, huge numbers. */
const oddString = fc.constantFrom(
  '',
  '*',
  '.',
  '1h1h',
  '-5s',
  '999999999999999999999h',
  '1e400s',
  '0.0000001ms',
  'NaN',
  '__proto__',
  'constructor',
  '(a+)+$',
  '(a|aa)+b',
  '(?=x)',
  '(a)\\1',
  '[',
  `${'(?:.{999}){0,1}'.repeat(60)}`,
  'a\nb',
  'a\r\nb',
  'a\u0000b',
  '%DOWNSTREAM_REMOTE_ADDRESS%',
  'reviews.default.svc.cluster.local',
  '127.0.0.1',
  '::1',
  '0.0.0.0/0',
  '300.1.1.1/33',
  'spiffe://cluster.local/ns/default/sa/x',
  '\uFEFF',
  '\uD800',
)

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 65535, 65536, 2 ** 31, 2 ** 53, Number.MAX_VALUE),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  oddString,
  fc.integer({ min: 1, max: 64 }).map((kib) => 'x'.repeat(kib * 1024)),
)

/** Any JSON-shaped value: scalars, lists and maps with keys that collide with field names or Object's own. */
export const anyValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(
        fc.tuple(
          fc.oneof(
            fc.string({ maxLength: 12 }),
            fc.constantFrom('__proto__', 'constructor', 'hosts', 'regex'),
          ),
          tie('value'),
        ),
        { maxLength: 4 },
      )
      .map((entries) => {
        const map: Record<string, unknown> = {}
        for (const [key, value] of entries)
          Object.defineProperty(map, key, { value, enumerable: true, configurable: true, writable: true })
        return map
      }),
  ),
})).value

/** Every path to a value inside `root` (map keys and list indexes). */
function valuePaths(root: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(prefix)
  if (Array.isArray(root)) {
    for (let i = 0; i < root.length; i++) valuePaths(root[i], [...prefix, i], out)
  } else if (root !== null && typeof root === 'object')
    for (const [key, value] of Object.entries(root)) valuePaths(value, [...prefix, key], out)
  return out
}

/** A copy of `root` with the value at `path` replaced (the root itself when the path is empty). */
function replaced(root: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value
  const copy = (Array.isArray(root) ? [...root] : { ...(root as object) }) as Record<string | number, unknown>
  copy[path[0]] = replaced(copy[path[0]], path.slice(1), value)
  return copy
}

/** A deeply nested value (lists or maps) `depth` levels down, as flow YAML text. */
function nested(depth: number, map: boolean): string {
  return map ? `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}` : `${'['.repeat(depth)}1${']'.repeat(depth)}`
}

/** Billion laughs: `levels` anchors, each a list of `width` aliases of the one before. */
function laughs(levels: number, width: number): string {
  let text =
    'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: lol}\nspec:\n  l0: &l0 [lol]\n'
  for (let i = 1; i <= levels; i++)
    text += `  l${i}: &l${i} [${Array(width)
      .fill(`*l${i - 1}`)
      .join(', ')}]\n`
  return `${text}  hosts: *l${levels}\n`
}

/** One resource with up to three fields replaced, as YAML or JSON text (JSON is YAML too). */
const mutatedResource = fc
  .tuple(
    fc.constantFrom(...baseYaml),
    fc.array(fc.tuple(fc.nat(), anyValue), { minLength: 1, maxLength: 3 }),
    fc.boolean(),
  )
  .map(([base, mutations, asJson]) => {
    let doc = base
    for (const [choice, value] of mutations) {
      const paths = valuePaths(doc)
      doc = replaced(doc, paths[choice % paths.length], value)
    }
    return asJson ? JSON.stringify(doc) : JSON.stringify(doc, null, 1)
  })

/** Texts built to exhaust the parser: nesting, aliases, size, many documents, tags and garbage. */
const hostileText = fc.oneof(
  fc
    .tuple(fc.integer({ min: 100, max: 20_000 }), fc.boolean())
    .map(([d, map]) => `spec: ${nested(d, map)}\n`),
  fc
    .integer({ min: 50, max: 3000 })
    .map((d) => Array.from({ length: d }, (_, i) => `${' '.repeat(i)}- `).join('\n')),
  fc
    .tuple(fc.integer({ min: 100, max: 2000 }), fc.boolean())
    .map(([d, map]) => `${baseYamlText(2)}  hosts: [${nested(d, map)}]\n`),
  fc.tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 2, max: 12 })).map(([l, w]) => laughs(l, w)),
  fc.integer({ min: 1, max: 3000 }).map((n) => `${baseYamlText(2)}---\n`.repeat(n)),
  fc.integer({ min: 1, max: 4 }).map((mib) => `${baseYamlText(2)}  hosts: ["${'a'.repeat(mib << 20)}"]\n`),
  fc.constantFrom(
    '%YAML 1.1\n---\na: !!binary aGk=\n',
    'a: !!js/function "function(){}"\n',
    '? [a, b]\n: c\n',
    'base: &b {apiVersion: networking.istio.io/v1}\ndoc:\n  <<: *b\n',
    '\uFEFFapiVersion: v1\n',
    'a:\tb\n',
    '*undefined_alias\n',
    '&a [*a]\n',
    '--- !<tag:yaml.org,2002:map>\n',
  ),
  fc.string({ unit: 'binary', maxLength: 300 }),
)

/** The text of a base resource (`index` in the list) as YAML, for texts that extend it. */
function baseYamlText(index: number): string {
  const doc = baseYaml[index] as { apiVersion: string; kind: string; metadata: { name: string } }
  return `apiVersion: ${doc.apiVersion}\nkind: ${doc.kind}\nmetadata: {name: ${doc.metadata.name}}\nspec:\n`
}

/** A resource file: hostile text or mutated resources, sometimes after a valid resource. */
export const hostileResourceFile: fc.Arbitrary<string> = fc
  .tuple(fc.oneof(mutatedResource, hostileText), fc.boolean())
  .map(([text, afterValid]) => (afterValid ? `${JSON.stringify(baseYaml[0])}\n---\n${text}` : text))
