// RequestAuthentication spec (istio/api security/v1beta1/request_authentication.proto): the JWT rules a workload verifies.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { stringMapSchema, timeoutDurationSchema } from './fields.ts'
import { headerOperationProblem } from './header-name.ts'
import { unsupported } from './unsupported.ts'

/** A non-empty string; `message` is Istio's validation error for an empty one (pkg/config/validation). */
function nonEmpty(message: string) {
  return z.string().superRefine((text, ctx) => {
    if (text === '') addError(ctx, message)
  })
}

/** `jwksUri`: an http or https URL, as Istio's security.ParseJwksURI accepts. */
const jwksUriSchema = z.string().superRefine((uri, ctx) => {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    addError(ctx, `jwksUri '${uri}' is not a valid URL`)
    return
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    addError(ctx, `jwksUri '${uri}': URI scheme '${url.protocol.slice(0, -1)}' is not supported`)
})

/** `jwks`: a JSON Web Key Set inline, a JSON object with a `keys` array (Istio rejects what jwk.Parse cannot read). */
const inlineJwksSchema = z.string().superRefine((text, ctx) => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    addError(ctx, `jwks parse error: ${(error as Error).message}`)
    return
  }
  const keys = typeof value === 'object' && value !== null ? (value as { keys?: unknown }).keys : undefined
  if (!Array.isArray(keys)) addError(ctx, 'jwks parse error: a JSON Web Key Set needs a "keys" array')
})

const claimToHeaderSchema = z.strictObject({
  header: z.string().superRefine((name, ctx) => {
    const problem = name === '' ? 'header name cannot be empty' : headerOperationProblem(name)
    if (problem !== undefined) addError(ctx, `outputClaimToHeaders: ${problem}`)
  }),
  claim: nonEmpty('outputClaimToHeaders claim must be set'),
})

const jwtRuleSchema = z.strictObject({
  issuer: nonEmpty('issuer must be set'),
  audiences: z.array(nonEmpty('audience must be non-empty string')).default([]),
  jwksUri: jwksUriSchema.optional(),
  jwks: inlineJwksSchema.optional(),
  fromHeaders: z
    .array(
      z.strictObject({ name: nonEmpty('location header name must be set'), prefix: z.string().optional() }),
    )
    .default([]),
  fromParams: z.array(nonEmpty('location query must be set')).default([]),
  fromCookies: z.array(nonEmpty('cookie name must be set')).default([]),
  outputPayloadToHeader: z.string().optional(),
  forwardOriginalToken: z.boolean().default(false),
  outputClaimToHeaders: z.array(claimToHeaderSchema).default([]),
  /** How long a JWKS fetch may take (Istio's default: 5s). */
  timeout: timeoutDurationSchema.optional(),
  /** Claims read as space-separated lists besides `scope` and `permission` (request.auth.claims). */
  spaceDelimitedClaims: z.array(z.string()).default([]),
})

export const requestAuthenticationSpecSchema = z.strictObject({
  selector: z.strictObject({ matchLabels: stringMapSchema.default({}) }).optional(),
  targetRef: unsupported(),
  targetRefs: unsupported(),
  jwtRules: z.array(jwtRuleSchema).default([]),
})

export type RequestAuthenticationSpec = z.infer<typeof requestAuthenticationSpecSchema>
export type JwtRuleSpec = RequestAuthenticationSpec['jwtRules'][number]
