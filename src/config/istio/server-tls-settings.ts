// ServerTLSSettings (istio/api networking/v1alpha3/gateway.proto) as a Sidecar ingress listener's `tls`: TLS termination.

import { type RefinementCtx, z } from 'zod'
import { addError } from './add-error.ts'
import { checkCipherSuites } from './cipher-suites.ts'
import { unsupported, warnUnsupported } from './unsupported.ts'

const TLS_MODES = [
  'PASSTHROUGH',
  'SIMPLE',
  'MUTUAL',
  'AUTO_PASSTHROUGH',
  'ISTIO_MUTUAL',
  'OPTIONAL_MUTUAL',
] as const

/** TLS protocol versions in order; TLS_AUTO leaves the proxy's default (TLS 1.2 to 1.3, as Envoy). */
export const TLS_PROTOCOLS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const

export type TlsProtocol = (typeof TLS_PROTOCOLS)[number]

/** The modes that terminate TLS on a Sidecar ingress listener. */
export type TerminatingTlsMode = 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL'

const notSupportedInSidecar = (ctx: RefinementCtx<unknown>, field: string, what = field): void =>
  addError(ctx, `sidecar: ${what} is not currently supported`, [field])

export const serverTlsSettingsSchema = z
  .strictObject({
    mode: z.enum(TLS_MODES).default('PASSTHROUGH'),
    serverCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
    caCrl: z.string().optional(),
    /** Istio rejects it in sidecar ingress tls; Outrigger checks client certificates' SANs against it. */
    subjectAltNames: z.array(z.string()).optional(),
    minProtocolVersion: z.enum(TLS_PROTOCOLS).default('TLS_AUTO'),
    maxProtocolVersion: z.enum(TLS_PROTOCOLS).default('TLS_AUTO'),
    cipherSuites: z.array(z.string()).optional(),
    httpsRedirect: z.boolean().optional(),
    credentialName: z.string().optional(),
    credentialNames: z.array(z.string()).optional(),
    caCertCredentialName: z.string().optional(),
    tlsCertificates: z.array(z.unknown()).optional(),
    verifyCertificateSpki: unsupported(),
    verifyCertificateHash: unsupported(),
    insecureSkipVerify: unsupported(),
  })
  .superRefine((tls, ctx) => {
    if (tls.httpsRedirect === true)
      addError(ctx, 'sidecar: httpsRedirect is not supported', ['httpsRedirect'])
    if (tls.credentialName !== undefined) notSupportedInSidecar(ctx, 'credentialName')
    if (tls.credentialNames !== undefined) notSupportedInSidecar(ctx, 'credentialNames')
    if (tls.caCertCredentialName !== undefined) notSupportedInSidecar(ctx, 'caCertCredentialName')
    if (tls.tlsCertificates !== undefined) notSupportedInSidecar(ctx, 'tlsCertificates', 'tls_certificates')
    if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'AUTO_PASSTHROUGH') {
      addError(ctx, `configuration is invalid: cannot set mode to ${tls.mode} in sidecar ingress tls`, [
        'mode',
      ])
      return
    }
    if (tls.mode === 'PASSTHROUGH') {
      addError(
        ctx,
        'mode PASSTHROUGH does not terminate TLS: sidecar ingress tls needs mode SIMPLE, MUTUAL or OPTIONAL_MUTUAL',
        ['mode'],
      )
      return
    }
    const mutual = tls.mode !== 'SIMPLE'
    const prefix = mutual ? 'MUTUAL TLS' : 'SIMPLE TLS'
    if (!tls.serverCertificate)
      addError(ctx, `${prefix} requires a server certificate`, ['serverCertificate'])
    if (!tls.privateKey) addError(ctx, `${prefix} requires a private key`, ['privateKey'])
    if (mutual && !tls.caCertificates)
      addError(ctx, `${prefix} requires a client CA bundle`, ['caCertificates'])
    if (!mutual && tls.caCrl !== undefined) addError(ctx, 'CRL is not supported with SIMPLE TLS', ['caCrl'])
    if (!mutual && (tls.subjectAltNames?.length ?? 0) > 0) {
      addError(ctx, 'subjectAltNames needs mode MUTUAL or OPTIONAL_MUTUAL (it checks client certificates)', [
        'subjectAltNames',
      ])
    }
    const min = TLS_PROTOCOLS.indexOf(tls.minProtocolVersion)
    const max = TLS_PROTOCOLS.indexOf(tls.maxProtocolVersion)
    if (min > 0 && max > 0 && min > max) {
      addError(
        ctx,
        `minProtocolVersion ${tls.minProtocolVersion} is above maxProtocolVersion ${tls.maxProtocolVersion}`,
        ['minProtocolVersion'],
      )
    }
    const { invalid, duplicate } = checkCipherSuites(tls.cipherSuites ?? [])
    if (invalid.length > 0)
      warnUnsupported(ctx, ['cipherSuites'], `ignoring invalid cipher suites: [${invalid.join(' ')}]`)
    if (duplicate.length > 0)
      warnUnsupported(ctx, ['cipherSuites'], `ignoring duplicate cipher suites: [${duplicate.join(' ')}]`)
  })

export type ServerTlsSettings = z.infer<typeof serverTlsSettingsSchema>
