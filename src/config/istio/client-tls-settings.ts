// ClientTLSSettings (istio/api networking/v1alpha3/destination_rule.proto): how a DestinationRule originates TLS upstream.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { warnUnsupported } from './unsupported.ts'

/** Istio's validation of ClientTLSSettings (pkg/config/validation validateTLS) plus the fields we do not build. */
export const clientTlsSettingsSchema = z
  .strictObject({
    mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).default('DISABLE'),
    clientCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
    /** Secrets come from SDS in Istio; a sidecar reads files only. */
    credentialName: z.string().optional(),
    subjectAltNames: z.array(z.string()).optional(),
    sni: z.string().optional(),
    insecureSkipVerify: z.boolean().optional(),
    caCrl: z.string().optional(),
  })
  .superRefine((tls, ctx) => {
    if (tls.credentialName !== undefined && tls.credentialName !== '') {
      warnUnsupported(
        ctx,
        ['credentialName'],
        'is not supported and is ignored: a sidecar reads certificates from files (clientCertificate, privateKey, caCertificates)',
      )
    }
    if (tls.mode === 'MUTUAL' && !tls.credentialName) {
      if (!tls.clientCertificate)
        addError(ctx, 'client certificate required for mutual tls', ['clientCertificate'])
      if (!tls.privateKey) addError(ctx, 'private key required for mutual tls', ['privateKey'])
    }
    if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'DISABLE') {
      // Istio ignores the file fields in these modes; say so rather than letting them look used.
      for (const field of ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'] as const) {
        if (tls[field] !== undefined) warnUnsupported(ctx, [field], `has no effect with mode ${tls.mode}`)
      }
    }
  })

export type ClientTlsSettings = z.infer<typeof clientTlsSettingsSchema>
