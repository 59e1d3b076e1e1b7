// One Istio resource as loaded from a YAML document: kind, identity, typed spec, and where it came from.

import type { AuthorizationPolicySpec } from './istio/authorization-policy.ts'
import type { DestinationRuleSpec } from './istio/destination-rule.ts'
import type { PeerAuthenticationSpec } from './istio/peer-authentication.ts'
import type { RequestAuthenticationSpec } from './istio/request-authentication.ts'
import type { ServiceEntrySpec } from './istio/service-entry.ts'
import type { SidecarSpec } from './istio/sidecar.ts'
import type { TelemetrySpec } from './istio/telemetry.ts'
import type { VirtualServiceSpec } from './istio/virtual-service.ts'

/** A path into a resource's `spec`, as zod and the YAML document name it. */
export type SpecPath = readonly (string | number)[]

export interface SourceRef {
  readonly file: string
  /** 1-based line of the document's first line. */
  readonly line: number
}

interface ResourceBase<K extends string, S> {
  readonly kind: K
  readonly apiVersion: string
  readonly name: string
  /** metadata.namespace, or the proxy's namespace when absent. */
  readonly namespace: string
  readonly spec: S
  readonly source: SourceRef
  /** 1-based line of `spec.<path>` in the file (the nearest existing ancestor when the path is absent). */
  lineOf(path: SpecPath): number
}

export type ServiceEntryResource = ResourceBase<'ServiceEntry', ServiceEntrySpec>
export type VirtualServiceResource = ResourceBase<'VirtualService', VirtualServiceSpec>
export type DestinationRuleResource = ResourceBase<'DestinationRule', DestinationRuleSpec>
export type SidecarResource = ResourceBase<'Sidecar', SidecarSpec>
export type PeerAuthenticationResource = ResourceBase<'PeerAuthentication', PeerAuthenticationSpec>
export type RequestAuthenticationResource = ResourceBase<'RequestAuthentication', RequestAuthenticationSpec>
export type AuthorizationPolicyResource = ResourceBase<'AuthorizationPolicy', AuthorizationPolicySpec>
export type TelemetryResource = ResourceBase<'Telemetry', TelemetrySpec>

export type Resource =
  | ServiceEntryResource
  | VirtualServiceResource
  | DestinationRuleResource
  | SidecarResource
  | PeerAuthenticationResource
  | RequestAuthenticationResource
  | AuthorizationPolicyResource
  | TelemetryResource
