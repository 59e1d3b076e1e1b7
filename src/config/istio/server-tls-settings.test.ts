import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { SidecarResource } from '../resource.ts'

/** Lines 1–7; the ingress listener's `tls` block starts on line 8. */
const HEADER = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: reviews
spec:
  ingress:
  - port: {number: 9443, protocol: HTTPS}
`

function load(tls: string, header = HEADER) {
  const parsed = parseResources(`${header}    tls:\n${tls}`, 'sidecar.yaml', 'default')
  return { resources: parsed.resources as SidecarResource[], messages: parsed.messages.map(formatMessage) }
}

describe('Sidecar ingress tls', () => {
  it('reads SIMPLE and MUTUAL settings with defaults', () => {
    const { resources, messages } = load(`      mode: MUTUAL
      serverCertificate: certs/cert.pem
      privateKey: certs/key.pem
      caCertificates: /etc/ca.pem
      subjectAltNames: [spiffe://cluster.local/ns/default/sa/client]
      minProtocolVersion: TLSV1_3
`)
    expect(messages).toEqual([])
    expect(resources[0].spec.ingress[0].tls).toEqual({
      mode: 'MUTUAL',
      serverCertificate: 'certs/cert.pem',
      privateKey: 'certs/key.pem',
      caCertificates: '/etc/ca.pem',
      subjectAltNames: ['spiffe://cluster.local/ns/default/sa/client'],
      minProtocolVersion: 'TLSV1_3',
      maxProtocolVersion: 'TLS_AUTO',
    })
  })

  it('rejects the modes that do not terminate TLS, as Istio does', () => {
    expect(load('      mode: ISTIO_MUTUAL\n').messages).toEqual([
      "sidecar.yaml:9: field 'spec.ingress[0].tls.mode': configuration is invalid: cannot set mode to ISTIO_MUTUAL in sidecar ingress tls",
    ])
    expect(load('      mode: AUTO_PASSTHROUGH\n').messages).toEqual([
      "sidecar.yaml:9: field 'spec.ingress[0].tls.mode': configuration is invalid: cannot set mode to AUTO_PASSTHROUGH in sidecar ingress tls",
    ])
    expect(load('      serverCertificate: c.pem\n      privateKey: k.pem\n').messages).toEqual([
      "sidecar.yaml:8: field 'spec.ingress[0].tls.mode': mode PASSTHROUGH does not terminate TLS: sidecar ingress tls needs mode SIMPLE, MUTUAL or OPTIONAL_MUTUAL",
    ])
  })

  it('requires a certificate and key, and a CA for MUTUAL', () => {
    expect(load('      mode: SIMPLE\n').messages).toEqual([
      "sidecar.yaml:8: field 'spec.ingress[0].tls.serverCertificate': SIMPLE TLS requires a server certificate",
      "sidecar.yaml:8: field 'spec.ingress[0].tls.privateKey': SIMPLE TLS requires a private key",
    ])
    expect(
      load('      mode: OPTIONAL_MUTUAL\n      serverCertificate: c.pem\n      privateKey: k.pem\n').messages,
    ).toEqual([
      "sidecar.yaml:8: field 'spec.ingress[0].tls.caCertificates': MUTUAL TLS requires a client CA bundle",
    ])
  })

  it('rejects fields a sidecar cannot use and checks versions', () => {
    const { messages } = load(`      mode: SIMPLE
      serverCertificate: c.pem
      privateKey: k.pem
      credentialName: my-secret
      httpsRedirect: true
      subjectAltNames: [a.example.com]
      minProtocolVersion: TLSV1_3
      maxProtocolVersion: TLSV1_2
      verifyCertificateHash: [abc]
`)
    expect(messages).toEqual([
      "sidecar.yaml:12: field 'spec.ingress[0].tls.credentialName': sidecar: credentialName is not currently supported",
      "sidecar.yaml:13: field 'spec.ingress[0].tls.httpsRedirect': sidecar: httpsRedirect is not supported",
      "sidecar.yaml:14: field 'spec.ingress[0].tls.subjectAltNames': subjectAltNames needs mode MUTUAL or OPTIONAL_MUTUAL (it checks client certificates)",
      "sidecar.yaml:15: field 'spec.ingress[0].tls.minProtocolVersion': minProtocolVersion TLSV1_3 is above maxProtocolVersion TLSV1_2",
      "sidecar.yaml:17: warning: field 'spec.ingress[0].tls.verifyCertificateHash' is not supported yet and is ignored",
    ])
  })

  it('warns about unknown and repeated cipher suites', () => {
    const { messages } = load(`      mode: SIMPLE
      serverCertificate: c.pem
      privateKey: k.pem
      cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, NOT-A-CIPHER, ECDHE-RSA-AES128-GCM-SHA256]
`)
    expect(messages).toEqual([
      "sidecar.yaml:12: warning: field 'spec.ingress[0].tls.cipherSuites' ignoring invalid cipher suites: [NOT-A-CIPHER]",
      "sidecar.yaml:12: warning: field 'spec.ingress[0].tls.cipherSuites' ignoring duplicate cipher suites: [ECDHE-RSA-AES128-GCM-SHA256]",
    ])
  })

  it('allows TLS termination on HTTPS and TLS ports only', () => {
    const header = HEADER.replace('protocol: HTTPS', 'protocol: HTTP')
    expect(
      load('      mode: SIMPLE\n      serverCertificate: c.pem\n      privateKey: k.pem\n', header).messages,
    ).toEqual([
      "sidecar.yaml:8: field 'spec.ingress[0].tls': server cannot have TLS settings for non HTTPS/TLS ports",
    ])
    const tls = HEADER.replace('protocol: HTTPS', 'protocol: tls')
    expect(
      load('      mode: SIMPLE\n      serverCertificate: c.pem\n      privateKey: k.pem\n', tls).messages,
    ).toEqual([])
  })
})
