// DestinationRule `tls` and auto-mTLS ──► UpstreamTlsModel: Istio's buildAutoMtlsSettings and cluster_tls.go for one cluster.

import { isAbsolute, resolve } from 'node:path'
import { tcpAlpnFor, type UpstreamTlsModel } from '../../tls/upstream-tls-model.ts'
import type { ClientTlsSettings } from '../istio/client-tls-settings.ts'
import type { NodeIdentity } from '../model.ts'
import type { Service } from './service-registry.ts'

/** What a cluster's TLS depends on besides the merged `tls` settings. */
export interface UpstreamTlsInput {
  readonly service: Service
  readonly port: number
  readonly subset: string
  /** HTTP2 or GRPC port (HTTP/2 to the endpoints). */
  readonly http2: boolean
  readonly node: NodeIdentity
  /** Whether the proxy has a workload certificate (bootstrap `tls`); auto-mTLS needs one. */
  readonly hasIdentity: boolean
  /** The DestinationRule's file, from which relative certificate paths are read. */
  readonly ruleFile: string | undefined
}

/** Istio's BuildDNSSrvSubsetKey: the SNI of ISTIO_MUTUAL, `outbound_.<port>_.<subset>_.<host>`. */
export function istioMutualSni(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`
}

/**
 * The identities the service's endpoints may present (Istio's push.ServiceAccounts): the ServiceEntry's
 * `subjectAltNames` and each endpoint's `serviceAccount` as `spiffe://<trust domain>/ns/<ns>/sa/<sa>`.
 */
export function serviceIdentities(service: Service, trustDomain: string): string[] {
  const names = new Set<string>(service.source.spec.subjectAltNames ?? [])
  for (const e of service.endpoints) {
    if (e.serviceAccount !== undefined && e.serviceAccount !== '')
      names.add(`spiffe://${trustDomain}/ns/${service.namespace}/sa/${e.serviceAccount}`)
  }
  return [...names]
}

function resolvePath(file: string | undefined, path: string | undefined): string | undefined {
  if (path === undefined || path === '') return undefined
  if (isAbsolute(path) || file === undefined) return path
  return resolve(file, '..', path)
}

/**
 * The cluster's client TLS, or undefined for plain text. With `tls` set (DISABLE included) the
 * DestinationRule decides; without, auto-mTLS gives ISTIO_MUTUAL to MESH_INTERNAL services for the
 * endpoints labelled `security.istio.io/tlsMode: istio` (istio/istio pilot/pkg/networking/core/cluster_builder.go
 * buildAutoMtlsSettings; MESH_EXTERNAL services get none), when the proxy has a workload certificate.
 */
export function compileUpstreamTls(
  tls: ClientTlsSettings | undefined,
  input: UpstreamTlsInput,
): UpstreamTlsModel | undefined {
  const { service, port, subset, http2, node } = input
  const defaultSni = istioMutualSni(port, subset, service.fqdn)
  if (tls === undefined) {
    if (service.source.spec.location === 'MESH_EXTERNAL' || !input.hasIdentity) return undefined
    return istioMutual('', defaultSni, serviceIdentities(service, node.trustDomain), http2, true)
  }
  if (tls.mode === 'DISABLE') return undefined
  if (tls.mode === 'ISTIO_MUTUAL') {
    // A DestinationRule's subjectAltNames replace the service's identities (even when empty: `[]` is set).
    const sans = tls.subjectAltNames ?? serviceIdentities(service, node.trustDomain)
    return istioMutual(tls.sni ?? '', defaultSni, sans, http2, false)
  }
  const file = input.ruleFile
  const files = {
    clientCertificate: tls.mode === 'MUTUAL' ? resolvePath(file, tls.clientCertificate) : undefined,
    privateKey: tls.mode === 'MUTUAL' ? resolvePath(file, tls.privateKey) : undefined,
    caCertificates: resolvePath(file, tls.caCertificates),
    caCrl: resolvePath(file, tls.caCrl),
  }
  const sni = tls.sni ?? ''
  // constructUpstreamTLS: a ServiceEntry's subjectAltNames stand in when the rule names none.
  const given = tls.subjectAltNames ?? []
  const subjectAltNames = given.length > 0 ? given : (service.source.spec.subjectAltNames ?? [])
  const insecureSkipVerify = tls.insecureSkipVerify === true
  // setAutoSniAndAutoSanValidation: without sni, the request's host is sent and, without SANs, verified.
  const autoSni = sni === '' && !service.fqdn.startsWith('*')
  const verifyHost = autoSni && subjectAltNames.length === 0 && !insecureSkipVerify ? service.fqdn : ''
  const model = {
    mode: tls.mode,
    sni: autoSni ? service.fqdn : sni,
    subjectAltNames,
    verifyHost,
    insecureSkipVerify,
    files,
    tcpAlpn: tcpAlpnFor(tls.mode, http2),
    autoDetected: false,
  }
  return { ...model, key: JSON.stringify(model) }
}

function istioMutual(
  sni: string,
  defaultSni: string,
  subjectAltNames: readonly string[],
  http2: boolean,
  autoDetected: boolean,
): UpstreamTlsModel {
  const model = {
    mode: 'ISTIO_MUTUAL' as const,
    sni: sni === '' ? defaultSni : sni,
    subjectAltNames,
    verifyHost: '',
    insecureSkipVerify: false,
    files: {
      clientCertificate: undefined,
      privateKey: undefined,
      caCertificates: undefined,
      caCrl: undefined,
    },
    tcpAlpn: tcpAlpnFor('ISTIO_MUTUAL', http2),
    autoDetected,
  }
  return { ...model, key: JSON.stringify(model) }
}
