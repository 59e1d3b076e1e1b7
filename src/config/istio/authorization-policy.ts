// AuthorizationPolicy spec (istio/api security/v1beta1/authorization_policy.proto), validated as Istio's webhook does.

import { isIP } from 'node:net'
import { z } from 'zod'
import { addError } from './add-error.ts'
import { EXPERIMENTAL_PREFIX, splitWhenKey } from './authorization-when-key.ts'
import { ipOrCidrSchema, stringMapSchema } from './fields.ts'
import { unsupported } from './unsupported.ts'

/** The `when` keys Istio documents (istio.io "Authorization Policy Conditions"), without their `[name]` part. */
export const WHEN_KEYS = [
  'request.headers',
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'request.auth.claims',
  'destination.ip',
  'destination.port',
  'connection.sni',
] as const

/** A key that takes a `[name]` (request.auth.claims takes one or more: `[a][b]`). */
const BRACKETED_KEYS = new Set(['request.headers', 'request.auth.claims'])

/** An Istio match value: exact, `prefix*`, `*suffix` or `*`; Istio's webhook rejects a `*` elsewhere. */
const matchValueSchema = z.string().superRefine((value, ctx) => {
  const inner = value.length > 1 ? value.slice(1, -1) : ''
  if (inner.includes('*'))
    addError(ctx, `'${value}': a wildcard '*' is allowed only at the start or the end of a value`)
})

const matchValuesSchema = z.array(matchValueSchema).optional()

/** A path value may also be an Istio path template (`/foo/{*}/bar`, `/foo/{**}`). */
const pathValueSchema = z.string().superRefine((value, ctx) => {
  if (value.includes('{')) {
    const problem = pathTemplateProblem(value)
    if (problem !== undefined) addError(ctx, problem)
    return
  }
  const inner = value.length > 1 ? value.slice(1, -1) : ''
  if (inner.includes('*'))
    addError(ctx, `'${value}': a wildcard '*' is allowed only at the start or the end of a value`)
})

/** Istio's path template rules (pkg/config/security: validateNewPathSyntax): `{*}` segments, one trailing `{**}`. */
export function pathTemplateProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return `path template '${path}' must start with '/'`
  const segments = path.split('/').slice(1)
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]
    if (!segment.includes('{') && !segment.includes('}')) continue
    if (segment === '{*}') continue
    if (segment === '{**}') {
      if (i !== segments.length - 1) return `path template '${path}': '{**}' must be the last segment`
      continue
    }
    return `path template '${path}': a segment must be exactly '{*}' or '{**}'`
  }
  return undefined
}

const portValueSchema = z.string().superRefine((value, ctx) => {
  const port = Number(value)
  if (!/^[0-9]+$/.test(value) || port < 0 || port > 65535)
    addError(ctx, `invalid port '${value}': must be a number in the range 0..65535`)
})

const sourceSchema = z.strictObject({
  principals: matchValuesSchema,
  notPrincipals: matchValuesSchema,
  requestPrincipals: matchValuesSchema,
  notRequestPrincipals: matchValuesSchema,
  namespaces: matchValuesSchema,
  notNamespaces: matchValuesSchema,
  ipBlocks: z.array(ipOrCidrSchema).optional(),
  notIpBlocks: z.array(ipOrCidrSchema).optional(),
  remoteIpBlocks: z.array(ipOrCidrSchema).optional(),
  notRemoteIpBlocks: z.array(ipOrCidrSchema).optional(),
  serviceAccounts: unsupported(),
  notServiceAccounts: unsupported(),
})

const operationSchema = z.strictObject({
  hosts: matchValuesSchema,
  notHosts: matchValuesSchema,
  ports: z.array(portValueSchema).optional(),
  notPorts: z.array(portValueSchema).optional(),
  methods: matchValuesSchema,
  notMethods: matchValuesSchema,
  paths: z.array(pathValueSchema).optional(),
  notPaths: z.array(pathValueSchema).optional(),
})

/** True when no field of a source or operation holds a value: Istio's webhook rejects it as empty. */
function isEmpty(fields: Record<string, unknown>): boolean {
  return Object.values(fields).every((v) => v === undefined || (Array.isArray(v) && v.length === 0))
}

const conditionSchema = z
  .strictObject({
    key: z.string(),
    values: z.array(z.string()).optional(),
    notValues: z.array(z.string()).optional(),
  })
  .superRefine((condition, ctx) => {
    const { key } = condition
    if ((condition.values ?? []).length === 0 && (condition.notValues ?? []).length === 0)
      addError(ctx, `condition '${key}': at least one of values or notValues must be set`)
    // Envoy filter metadata keys are accepted here and warned about when the policy is compiled.
    if (key.startsWith(EXPERIMENTAL_PREFIX)) return
    const split = splitWhenKey(key)
    const attribute = split?.attribute ?? key
    if (split === undefined || !(WHEN_KEYS as readonly string[]).includes(attribute)) {
      addError(ctx, `unknown condition key '${key}' (expected one of ${WHEN_KEYS.join(', ')})`, ['key'])
      return
    }
    const bracketed = BRACKETED_KEYS.has(attribute)
    if (bracketed !== split.names.length > 0)
      addError(
        ctx,
        bracketed ? `condition key '${key}' needs a [name]` : `condition key '${key}' takes no [name]`,
        ['key'],
      )
    else if (attribute === 'request.headers' && split.names.length > 1)
      addError(ctx, `condition key '${key}' takes one header name`, ['key'])
    const all = [...(condition.values ?? []), ...(condition.notValues ?? [])]
    for (const value of all) {
      if (attribute === 'destination.port' && (!/^[0-9]+$/.test(value) || Number(value) > 65535))
        addError(ctx, `condition '${key}': invalid port '${value}'`)
      if (
        (attribute === 'source.ip' || attribute === 'remote.ip' || attribute === 'destination.ip') &&
        !isIpOrCidr(value)
      )
        addError(ctx, `condition '${key}': '${value}' is not a valid IP address or CIDR block`)
    }
  })

function isIpOrCidr(text: string): boolean {
  const [address, prefix, ...extra] = text.split('/')
  const family = isIP(address)
  if (family === 0 || extra.length > 0) return false
  return prefix === undefined || (/^[0-9]+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32))
}

/** A `from` entry: Istio's webhook rejects one without a source, or with an empty one. */
const fromSchema = z.strictObject({ source: sourceSchema.optional() }).superRefine((entry, ctx) => {
  if (entry.source === undefined) addError(ctx, '`from.source` must not be nil')
  else if (isEmpty(entry.source)) addError(ctx, '`from.source` must not be empty', ['source'])
})

/** A `to` entry: likewise for its operation. */
const toSchema = z.strictObject({ operation: operationSchema.optional() }).superRefine((entry, ctx) => {
  if (entry.operation === undefined) addError(ctx, '`to.operation` must not be nil')
  else if (isEmpty(entry.operation)) addError(ctx, '`to.operation` must not be empty', ['operation'])
})

/** A present `from` or `to` must have entries (Istio's ValidateAuthorizationPolicy). */
function nonEmptyList<T extends z.ZodType>(entry: T, message: string) {
  return z.array(entry).superRefine((list, ctx) => {
    if (list.length === 0) addError(ctx, message)
  })
}

const ruleSchema = z.strictObject({
  from: nonEmptyList(fromSchema, '`from` must not be empty').optional(),
  to: nonEmptyList(toSchema, '`to` must not be empty').optional(),
  when: z.array(conditionSchema).optional(),
})

const targetRefSchema = z.unknown()

export const authorizationPolicySpecSchema = z
  .strictObject({
    selector: z.strictObject({ matchLabels: stringMapSchema.default({}) }).optional(),
    targetRef: targetRefSchema.optional(),
    targetRefs: z.array(targetRefSchema).optional(),
    rules: z.array(ruleSchema).default([]),
    action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).default('ALLOW'),
    provider: z.strictObject({ name: z.string() }).optional(),
  })
  .superRefine((policy, ctx) => {
    const targeted = policy.targetRef !== undefined || (policy.targetRefs ?? []).length > 0
    if (policy.selector !== undefined && targeted)
      addError(ctx, 'only one of selector, targetRef or targetRefs can be set')
    if (policy.targetRef !== undefined && policy.targetRefs !== undefined)
      addError(ctx, 'only one of targetRef or targetRefs can be set')
    if (policy.action === 'CUSTOM' && policy.provider === undefined)
      addError(ctx, 'a provider must be set when action is CUSTOM', ['action'])
    if (policy.action !== 'CUSTOM' && policy.provider !== undefined)
      addError(ctx, 'a provider can be set only when action is CUSTOM', ['provider'])
  })

export type AuthorizationPolicySpec = z.infer<typeof authorizationPolicySpecSchema>
export type AuthorizationRule = z.infer<typeof ruleSchema>
export type AuthorizationSource = z.infer<typeof sourceSchema>
export type AuthorizationOperation = z.infer<typeof operationSchema>
export type AuthorizationCondition = z.infer<typeof conditionSchema>
