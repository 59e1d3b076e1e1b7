// Property: `outrigger explain`'s route decision is the router's, for generated VirtualServices compiled by the real compiler and generated requests.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../../src/bootstrap/schema.ts'
import { compileModel } from '../../src/config/compile.ts'
import { ConfigError } from '../../src/config/messages.ts'
import type { Model } from '../../src/config/model.ts'
import { parseResources } from '../../src/config/parse-resources.ts'
import type { RequestFacts } from '../../src/route/request-facts.ts'
import { type ExplainedRequest, explainRouting } from '../../src/route/route-explain.ts'
import type { RouteTable } from '../../src/route/route-table.ts'
import { fuzzParameters, fuzzTimeout } from './fuzz-budget.ts'

const bootstrap: Bootstrap = {
  ...bootstrapSchema.parse({ node: { labels: { app: 'productpage', version: 'v1' } } }),
  file: 'bootstrap.yaml',
}

/** Small alphabets, so that generated conditions and requests meet often. */
const paths = ['/', '/api', '/api/v1', '/API/v1', '/v2', '/items/12', '/items/x']
const values = ['jason', 'Jason', 'bob', '', 'ja']
const methods = ['GET', 'POST', 'DELETE']
const authorities = [
  'reviews',
  'reviews:9080',
  'REVIEWS:9080',
  'reviews.default',
  'reviews.default.svc.cluster.local:9080',
  'ratings:9080',
  'api.example.com',
  'x.api.example.com:9080',
  'unknown:9080',
  '',
]

const literalMatch = fc.oneof(
  fc.constantFrom(...paths, ...values).map((exact) => ({ exact })),
  fc.constantFrom('/', '/a', '/api', '/API', '/v', 'ja', 'J').map((prefix) => ({ prefix })),
  fc.constantFrom('/items/[0-9]+', '/api/.*', 'j.*', '.*').map((regex) => ({ regex })),
)

/** Headers may also ask only for presence (`{}`). */
const valueMatch = fc.oneof(literalMatch, fc.constant({}))

const matchBlock = fc.record(
  {
    uri: literalMatch,
    ignoreUriCase: fc.boolean(),
    method: fc.constantFrom(...methods).map((exact) => ({ exact })),
    authority: fc.constantFrom('reviews', 'REV', 'ratings').map((prefix) => ({ prefix })),
    headers: fc.dictionary(fc.constantFrom('end-user', 'x-debug'), valueMatch, { maxKeys: 2 }),
    withoutHeaders: fc.dictionary(fc.constantFrom('x-debug', 'x-canary'), valueMatch, { maxKeys: 1 }),
    queryParams: fc.dictionary(fc.constantFrom('flavour', 'v'), literalMatch, { maxKeys: 1 }),
    port: fc.constantFrom(9080, 9081),
    sourceLabels: fc.constantFrom({ app: 'productpage' }, { app: 'someone-else' }),
  },
  { requiredKeys: [] },
)

const httpEntry = fc.record(
  {
    match: fc.array(matchBlock, { maxLength: 3 }),
    route: fc.constant([{ destination: { host: 'reviews' } }]),
  },
  { requiredKeys: ['route'] },
)

const virtualServices = fc.record({
  reviews: fc.array(httpEntry, { minLength: 1, maxLength: 6 }),
  wildcard: fc.array(httpEntry, { maxLength: 3 }),
})

const request = fc.record({
  method: fc.constantFrom(...methods),
  path: fc
    .tuple(fc.constantFrom(...paths), fc.constantFrom('', '?flavour=mint', '?v=jason&v=bob', '?flavour='))
    .map(([p, q]) => p + q),
  scheme: fc.constantFrom('http', 'https'),
  authority: fc.constantFrom(...authorities),
  headers: fc
    .dictionary(fc.constantFrom('end-user', 'x-debug', 'x-canary'), fc.constantFrom(...values), {
      maxKeys: 3,
    })
    .map((h) => new Map(Object.entries(h))),
})

function resources(vs: { reviews: unknown[]; wildcard: unknown[] }): string {
  const wildcard =
    vs.wildcard.length === 0
      ? ''
      : `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wildcard, namespace: default}
spec: ${JSON.stringify({ hosts: ['*.api.example.com'], http: vs.wildcard })}
`
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{port: {number: 9080, protocol: HTTP, name: http}, hosts: ["*/*"]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec: ${JSON.stringify({ hosts: ['reviews'], http: vs.reviews })}
${wildcard}`
}

function compile(yaml: string): Model {
  const parsed = parseResources(yaml, 'istio.yaml', 'default')
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  return compileModel({ bootstrap, resources: parsed.resources, files: [], warnings: [], version: 1 })
}

/** http/route-selection.ts's selectRoute over plain facts: the table's lookup, then the first route that matches. */
function routerDecision(table: RouteTable, req: ExplainedRequest) {
  const vh = table.lookup(req.authority)
  if (vh === undefined) return { vh, route: undefined }
  const q = req.path.indexOf('?')
  const query = new URLSearchParams(q === -1 ? '' : req.path.slice(q + 1))
  const facts: RequestFacts = {
    method: req.method,
    path: q === -1 ? req.path : req.path.slice(0, q),
    scheme: req.scheme,
    authority: req.authority,
    port: vh.port,
    header: (name) => req.headers.get(name),
    queryParam: (name) => query.get(name) ?? undefined,
  }
  return { vh, route: vh.routes.find((r) => r.matches(facts)), facts }
}

describe('explain agrees with the router', () => {
  it(
    'picks the same virtual host and route, and gives a reason for every route it passes over',
    () => {
      let matched = 0
      let passedOver = 0
      fc.assert(
        fc.property(virtualServices, fc.array(request, { minLength: 1, maxLength: 20 }), (vs, requests) => {
          const model = compile(resources(vs))
          const table = model.listeners.find((l) => l.direction === 'outbound')?.routeTable
          expect(table).toBeDefined()
          if (table === undefined) return
          for (const req of requests) {
            const real = routerDecision(table, req)
            const explained = explainRouting(table, req)
            expect(explained.choice?.virtualHost).toBe(real.vh)
            expect(explained.matched).toBe(real.route)
            for (const verdict of explained.verdicts) {
              // A route explain passed over is one the router's matcher refuses, and the reverse.
              if (real.facts !== undefined)
                expect(verdict.route.matches(real.facts)).toBe(verdict.miss === undefined)
              if (verdict.miss !== undefined) passedOver++
            }
            if (real.facts !== undefined)
              for (const route of real.vh?.routes ?? [])
                expect(route.match?.firstMiss(real.facts) === undefined).toBe(route.matches(real.facts))
            if (real.route !== undefined) matched++
          }
        }),
        fuzzParameters('route-explain', 150),
      )
      // The generators reach both outcomes, or the property would prove little.
      expect(matched).toBeGreaterThan(0)
      expect(passedOver).toBeGreaterThan(0)
    },
    fuzzTimeout(60_000),
  )
})
