// VirtualService spec (istio/api networking/v1alpha3/virtual_service.proto): HTTP routing rules for hosts.

import { isIP } from 'node:net'
import { z } from 'zod'
import { addError } from './add-error.ts'
import { corsPolicySchema } from './cors-policy.ts'
import {
  ipOrCidrSchema,
  portNumberSchema,
  stringMapSchema,
  timeoutDurationSchema,
  weightSchema,
} from './fields.ts'
import { headerOperationProblem, headerValueProblem, requestHeaderSetProblem } from './header-name.ts'
import { isDnsLabel, wildcardDomainProblem } from './host-name.ts'
import { httpFaultSchema, percentSchema } from './http-fault.ts'
import { httpRetrySchema } from './http-retry.ts'
import { re2Problem } from './re2.ts'
import {
  headerMatchMapSchema,
  queryParamMatchMapSchema,
  stringMatchSchema,
  uriMatchSchema,
} from './string-match.ts'
import { unsupported } from './unsupported.ts'

/** Istio's limit for a direct response body. */
const MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024

const virtualServiceHostSchema = z.string().superRefine((host, ctx) => {
  if (host === '*' || isIP(host) !== 0) return
  const problem = wildcardDomainProblem(host)
  if (problem !== undefined) addError(ctx, problem)
})

const destinationSchema = z.strictObject({
  host: z.string().superRefine((host, ctx) => {
    const problem = host === '*' ? `invalid destination host ${host}` : wildcardDomainProblem(host)
    if (problem !== undefined) addError(ctx, problem)
  }),
  subset: z
    .string()
    .superRefine((name, ctx) => {
      if (!isDnsLabel(name)) addError(ctx, `subset name is invalid: '${name}'`)
    })
    .optional(),
  port: z.strictObject({ number: portNumberSchema }).optional(),
})

/** A string Envoy puts in a header or the path as is (host_rewrite_literal, prefix_rewrite, redirects): no line breaks. */
const headerValueString = z.string().superRefine((value, ctx) => {
  const problem = headerValueProblem(value)
  if (problem !== undefined) addError(ctx, problem)
})

function headerMap(problemOf: (name: string) => string | undefined) {
  return z.record(z.string(), z.string()).superRefine((headers, ctx) => {
    for (const [name, value] of Object.entries(headers)) {
      const problem = problemOf(name) ?? headerValueProblem(value)
      if (problem !== undefined) addError(ctx, problem, [name])
    }
  })
}

function headerNames(problemOf: (name: string) => string | undefined) {
  return z.array(
    z.string().superRefine((name, ctx) => {
      const problem = problemOf(name)
      if (problem !== undefined) addError(ctx, problem)
    }),
  )
}

const headersSchema = z.strictObject({
  request: z
    .strictObject({
      set: headerMap(requestHeaderSetProblem).default({}),
      add: headerMap(requestHeaderSetProblem).default({}),
      remove: headerNames(headerOperationProblem).default([]),
    })
    .optional(),
  response: z
    .strictObject({
      set: headerMap(headerOperationProblem).default({}),
      add: headerMap(headerOperationProblem).default({}),
      remove: headerNames(headerOperationProblem).default([]),
    })
    .optional(),
})

const matchRequestSchema = z.strictObject({
  name: z.string().optional(),
  uri: uriMatchSchema.optional(),
  scheme: stringMatchSchema.optional(),
  method: stringMatchSchema.optional(),
  authority: stringMatchSchema.optional(),
  headers: headerMatchMapSchema.default({}),
  port: portNumberSchema.optional(),
  sourceLabels: stringMapSchema.default({}),
  gateways: z.array(z.string()).default([]),
  queryParams: queryParamMatchMapSchema.default({}),
  ignoreUriCase: z.boolean().default(false),
  withoutHeaders: headerMatchMapSchema.default({}),
  sourceNamespace: z
    .string()
    .superRefine((namespace, ctx) => {
      if (!isDnsLabel(namespace)) addError(ctx, `sourceNamespace match '${namespace}' is invalid`)
    })
    .optional(),
  statPrefix: z.string().optional(),
})

const routeDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: weightSchema.optional(),
  headers: headersSchema.optional(),
})

const redirectSchema = z
  .strictObject({
    uri: headerValueString.optional(),
    authority: headerValueString.optional(),
    port: portNumberSchema.optional(),
    derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).optional(),
    scheme: z.string().optional(),
    /** Istio answers 301 when no code is given. */
    redirectCode: z.number().default(301),
    prefixRewrite: unsupported(),
  })
  .superRefine((redirect, ctx) => {
    if (redirect.port !== undefined && redirect.derivePort !== undefined) {
      addError(ctx, 'redirect may only specify one of port or derivePort', ['derivePort'])
    }
    const targetsSomething =
      redirect.uri !== undefined ||
      redirect.authority !== undefined ||
      redirect.scheme !== undefined ||
      redirect.port !== undefined ||
      redirect.derivePort !== undefined
    if (!targetsSomething) addError(ctx, 'redirect must specify URI, authority, scheme, or port')
    if (
      !Number.isInteger(redirect.redirectCode) ||
      redirect.redirectCode < 300 ||
      redirect.redirectCode > 399
    ) {
      addError(ctx, `${redirect.redirectCode} is not a valid redirect code, must be 3xx`, ['redirectCode'])
    }
    if (redirect.scheme !== undefined && redirect.scheme !== 'http' && redirect.scheme !== 'https') {
      addError(ctx, `invalid redirect scheme '${redirect.scheme}', must be "http" or "https"`, ['scheme'])
    }
  })

const directResponseSchema = z.strictObject({
  status: z.number().superRefine((status, ctx) => {
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      addError(ctx, `HTTP status ${status} is not in range 200-599`)
    }
  }),
  body: z
    .strictObject({
      string: z.string().optional(),
      /** Base64, as protobuf's JSON form writes bytes. */
      bytes: z
        .string()
        .superRefine((text, ctx) => {
          if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) addError(ctx, 'body.bytes must be base64')
        })
        .optional(),
    })
    .superRefine((body, ctx) => {
      if (body.string !== undefined && body.bytes !== undefined) {
        addError(ctx, 'body may only specify one of string or bytes', ['bytes'])
      }
      const size =
        body.string !== undefined
          ? Buffer.byteLength(body.string)
          : Buffer.from(body.bytes ?? '', 'base64').length
      if (size > MAX_DIRECT_RESPONSE_BYTES) addError(ctx, 'direct response body must be less than 1MB')
    })
    .optional(),
})

const rewriteSchema = z
  .strictObject({
    uri: headerValueString.optional(),
    authority: headerValueString.optional(),
    uriRegexRewrite: z
      .strictObject({
        match: z.string().superRefine((pattern, ctx) => {
          const problem = re2Problem(pattern)
          if (problem !== undefined) addError(ctx, problem)
        }),
        rewrite: headerValueString,
      })
      .optional(),
  })
  .superRefine((rewrite, ctx) => {
    if (rewrite.uri !== undefined && rewrite.uriRegexRewrite !== undefined) {
      addError(ctx, 'rewrite may only contain one of uri or uriRegexRewrite', ['uriRegexRewrite'])
    }
    if (
      rewrite.uri === undefined &&
      rewrite.uriRegexRewrite === undefined &&
      rewrite.authority === undefined
    ) {
      addError(ctx, 'rewrite must specify at least one of uri, uriRegexRewrite, or authority')
    }
  })

const httpRouteSchema = z
  .strictObject({
    name: z.string().optional(),
    match: z.array(matchRequestSchema).default([]),
    route: z.array(routeDestinationSchema).default([]),
    redirect: redirectSchema.optional(),
    directResponse: directResponseSchema.optional(),
    delegate: unsupported(),
    rewrite: rewriteSchema.optional(),
    timeout: timeoutDurationSchema.optional(),
    retries: httpRetrySchema.optional(),
    fault: httpFaultSchema.optional(),
    mirror: destinationSchema.optional(),
    mirrors: z
      .array(z.strictObject({ destination: destinationSchema, percentage: percentSchema.optional() }))
      .default([]),
    /** Deprecated integer percent, used when `mirrorPercentage` is absent. */
    mirrorPercent: z.number().int().min(0).max(100).optional(),
    mirrorPercentage: percentSchema.optional(),
    corsPolicy: corsPolicySchema.optional(),
    headers: headersSchema.optional(),
  })
  .superRefine((http, ctx) => {
    const hasRoute = http.route.length > 0
    if (http.redirect !== undefined) {
      if (hasRoute) addError(ctx, 'HTTP route cannot contain both route and redirect', ['redirect'])
      if (http.rewrite !== undefined)
        addError(ctx, 'HTTP route cannot contain both rewrite and redirect', ['redirect'])
      if (http.directResponse !== undefined) {
        addError(ctx, 'HTTP route cannot contain both directResponse and redirect', ['directResponse'])
      }
    } else if (http.directResponse !== undefined) {
      if (hasRoute)
        addError(ctx, 'HTTP route cannot contain both route and directResponse', ['directResponse'])
      if (http.rewrite !== undefined) {
        addError(ctx, 'HTTP route cannot contain both rewrite and directResponse', ['directResponse'])
      }
    } else if (!hasRoute) {
      addError(ctx, 'HTTP route must have one of route, redirect or directResponse')
    }
    if (http.mirror !== undefined && http.mirrors.length > 0) {
      addError(ctx, 'HTTP route cannot contain both mirror and mirrors', ['mirrors'])
    }
    if (http.route.length > 1 && http.route.every((destination) => (destination.weight ?? 0) === 0)) {
      addError(ctx, 'total destination weight = 0', ['route'])
    }
  })

/** A weighted destination of a tcp[] or tls[] route (istio/api RouteDestination). */
const l4RouteDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: weightSchema.optional(),
})

/** Istio's validateRouteDestinations: several destinations must not all weigh 0. */
function l4RouteProblems(
  route: readonly { weight?: number }[],
  ctx: z.RefinementCtx<unknown>,
  required: string,
): void {
  if (route.length === 0) addError(ctx, required, ['route'])
  if (route.length > 1 && route.every((destination) => (destination.weight ?? 0) === 0)) {
    addError(ctx, 'total destination weight = 0', ['route'])
  }
}

/** Match fields tcp[] and tls[] routes share (istio/api L4MatchAttributes, TLSMatchAttributes). */
const l4MatchFields = {
  destinationSubnets: z.array(ipOrCidrSchema).default([]),
  port: portNumberSchema.optional(),
  sourceLabels: stringMapSchema.default({}),
  gateways: z.array(z.string()).default([]),
  sourceNamespace: z
    .string()
    .superRefine((namespace, ctx) => {
      if (!isDnsLabel(namespace)) addError(ctx, `sourceNamespace match '${namespace}' is invalid`)
    })
    .optional(),
}

/** Opaque TCP routing: the first route whose match applies wins (istio/api TCPRoute). */
const tcpRouteSchema = z
  .strictObject({
    match: z.array(z.strictObject({ ...l4MatchFields, sourceSubnet: unsupported() })).default([]),
    route: z.array(l4RouteDestinationSchema).default([]),
  })
  .superRefine((tcp, ctx) => l4RouteProblems(tcp.route, ctx, 'TCP route is required'))

/** An SNI host: a domain with an optional leading wildcard label, or (against the SNI spec) an IP. */
const sniHostSchema = z.string().superRefine((host, ctx) => {
  if (isIP(host) !== 0) return
  const problem = wildcardDomainProblem(host)
  if (problem !== undefined) addError(ctx, problem)
})

/** TLS passthrough routing by the ClientHello's SNI (istio/api TLSRoute). */
const tlsRouteSchema = z
  .strictObject({
    match: z
      .array(z.strictObject({ sniHosts: z.array(sniHostSchema).default([]), ...l4MatchFields }))
      .default([]),
    route: z.array(l4RouteDestinationSchema).default([]),
  })
  .superRefine((tls, ctx) => {
    if (tls.match.length === 0) addError(ctx, 'TLS route must have at least one match condition', ['match'])
    tls.match.forEach((match, index) => {
      if (match.sniHosts.length === 0) {
        addError(ctx, 'TLS match must have at least one SNI host', ['match', index, 'sniHosts'])
      }
    })
    l4RouteProblems(tls.route, ctx, 'TLS route is required')
  })

/** Istio's validateSniHost: every SNI host must fall within one of the VirtualService's hosts. */
function sniHostIsCovered(sni: string, hosts: readonly string[]): boolean {
  const name = sni.toLowerCase()
  for (const h of hosts) {
    const host = h.toLowerCase()
    if (name.startsWith('*')) {
      if (host.startsWith('*') && name.length >= host.length && name.slice(1).endsWith(host.slice(1)))
        return true
    } else if (host.startsWith('*') ? name.endsWith(host.slice(1)) : name === host) {
      return true
    }
  }
  return false
}

export const virtualServiceSpecSchema = z
  .strictObject({
    hosts: z.array(virtualServiceHostSchema),
    gateways: z.array(z.string()).default([]),
    http: z.array(httpRouteSchema).default([]),
    tls: z.array(tlsRouteSchema).default([]),
    tcp: z.array(tcpRouteSchema).default([]),
    exportTo: z.array(z.string()).default([]),
  })
  .superRefine((service, ctx) => {
    if (service.hosts.length === 0) addError(ctx, 'virtual service must have at least one host', ['hosts'])
    service.tls.forEach((tls, i) => {
      tls.match.forEach((match, j) => {
        match.sniHosts.forEach((sni, k) => {
          if (isIP(sni) === 0 && !sniHostIsCovered(sni, service.hosts)) {
            addError(
              ctx,
              `SNI host "${sni}" is not a compatible subset of any of the virtual service hosts: [${service.hosts.join(', ')}]`,
              ['tls', i, 'match', j, 'sniHosts', k],
            )
          }
        })
      })
    })
    const appliesToMesh = service.gateways.length === 0 || service.gateways.includes('mesh')
    service.hosts.forEach((host, index) => {
      if (host === '*' && appliesToMesh) {
        addError(
          ctx,
          "wildcard host * is not allowed for virtual services bound to the mesh gateway ('mesh')",
          ['hosts', index],
        )
      }
    })
  })

export type VirtualServiceSpec = z.infer<typeof virtualServiceSpecSchema>
export type HttpRoute = VirtualServiceSpec['http'][number]
export type HttpMatchRequest = HttpRoute['match'][number]
export type HttpRouteDestination = HttpRoute['route'][number]
export type TcpRoute = VirtualServiceSpec['tcp'][number]
export type TlsRoute = VirtualServiceSpec['tls'][number]
