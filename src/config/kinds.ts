// The resource kinds Outrigger reads (API group, versions, spec schema) and the Istio kinds accepted but ignored for now.

import type { z } from 'zod'
import { authorizationPolicySpecSchema } from './istio/authorization-policy.ts'
import { destinationRuleSpecSchema } from './istio/destination-rule.ts'
import { peerAuthenticationSpecSchema } from './istio/peer-authentication.ts'
import { requestAuthenticationSpecSchema } from './istio/request-authentication.ts'
import { serviceEntrySpecSchema } from './istio/service-entry.ts'
import { sidecarSpecSchema } from './istio/sidecar.ts'
import { telemetrySpecSchema } from './istio/telemetry.ts'
import { virtualServiceSpecSchema } from './istio/virtual-service.ts'
import type { Resource } from './resource.ts'

export type ResourceKind = Resource['kind']
export type SpecOf<K extends ResourceKind> = Extract<Resource, { kind: K }>['spec']

export const NETWORKING_GROUP = 'networking.istio.io'
export const NETWORKING_VERSIONS: readonly string[] = ['v1', 'v1beta1', 'v1alpha3']
export const SECURITY_GROUP = 'security.istio.io'
export const SECURITY_VERSIONS: readonly string[] = ['v1', 'v1beta1']
export const TELEMETRY_GROUP = 'telemetry.istio.io'
export const TELEMETRY_VERSIONS: readonly string[] = ['v1', 'v1alpha1']

/** The API group and versions of each kind read; a kind not listed is a networking kind. */
const KIND_APIS: Readonly<Record<string, { group: string; versions: readonly string[] }>> = {
  RequestAuthentication: { group: SECURITY_GROUP, versions: SECURITY_VERSIONS },
  PeerAuthentication: { group: SECURITY_GROUP, versions: SECURITY_VERSIONS },
  AuthorizationPolicy: { group: SECURITY_GROUP, versions: SECURITY_VERSIONS },
  Telemetry: { group: TELEMETRY_GROUP, versions: TELEMETRY_VERSIONS },
}

export const SPEC_SCHEMAS: { readonly [K in ResourceKind]: z.ZodType<SpecOf<K>> } = {
  ServiceEntry: serviceEntrySpecSchema,
  VirtualService: virtualServiceSpecSchema,
  DestinationRule: destinationRuleSpecSchema,
  Sidecar: sidecarSpecSchema,
  RequestAuthentication: requestAuthenticationSpecSchema,
  PeerAuthentication: peerAuthenticationSpecSchema,
  AuthorizationPolicy: authorizationPolicySpecSchema,
  Telemetry: telemetrySpecSchema,
}

/** Istio kinds we accept with a warning and do not return yet: kind → API group (any version). */
const IGNORED_KINDS: Readonly<Record<string, string>> = {}

/** The spec schema of `kind`, typed by it. */
export function specSchemaOf<K extends ResourceKind>(kind: K): z.ZodType<SpecOf<K>> {
  return SPEC_SCHEMAS[kind]
}

/** The API group and versions a document of `kind` must name. */
export function apiOf(kind: ResourceKind): { group: string; versions: readonly string[] } {
  return KIND_APIS[kind] ?? { group: NETWORKING_GROUP, versions: NETWORKING_VERSIONS }
}

/** The API group of a kind accepted but ignored for now, or undefined. */
export function ignoredKindGroup(kind: string): string | undefined {
  return Object.hasOwn(IGNORED_KINDS, kind) ? IGNORED_KINDS[kind] : undefined
}

/** Every kind a document may have, for messages. */
export const KNOWN_KINDS: readonly string[] = [...Object.keys(SPEC_SCHEMAS), ...Object.keys(IGNORED_KINDS)]

export function isResourceKind(kind: string): kind is ResourceKind {
  return Object.hasOwn(SPEC_SCHEMAS, kind)
}
