// The X.509 profile of Istio's CA (istio/istio security/pkg/pki/util/generate_cert.go), built and signed with node-forge.

import { createPrivateKey, type KeyObject, randomBytes, sign } from 'node:crypto'
import { promisify } from 'node:util'
import forge, { type Certificate, type Extension } from 'node-forge'

const signAsync = promisify(sign)

/**
 * How far back NotBefore is set on a workload certificate, for clock skew between the CA and its peers
 * (generate_cert.go ClockSkewGracePeriod).
 */
export const CLOCK_SKEW_GRACE_MS = 2 * 60 * 1000

/** A random 128-bit serial number, as genSerialNum, kept positive in DER (a leading 0x00 when the top bit is set). */
function serialNumber(): string {
  const hex = randomBytes(16).toString('hex')
  return Number.parseInt(hex[0], 16) >= 8 ? `00${hex}` : hex
}

/** The issuing CA: its certificate as forge reads it (subject, key identifier) and its private key. */
export interface ForgeSigner {
  readonly certificate: Certificate
  readonly privateKey: KeyObject
}

/**
 * Signs `certificate` with sha256WithRSAEncryption as forge's Certificate.sign does, but with node:crypto
 * in libuv's thread pool: forge's pure-JS RSA signature would hold the event loop for ~40-80 ms.
 * forge only builds the TBSCertificate and the PEM around the signature.
 */
async function signAndEncode(certificate: Certificate, key: KeyObject): Promise<string> {
  const algorithm = forge.pki.oids.sha256WithRSAEncryption
  certificate.signatureOid = algorithm
  certificate.siginfo.algorithmOid = algorithm
  const tbs = forge.pki.getTBSCertificate(certificate)
  certificate.tbsCertificate = tbs
  const signature = await signAsync('sha256', Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary'), key)
  certificate.signature = signature.toString('binary')
  return forge.pki.certificateToPem(certificate).replaceAll('\r\n', '\n')
}

/** A certificate body for `publicKeyPem`, valid from `notBefore` to `notAfter`, with a fresh serial number. */
function newCertificate(options: {
  readonly publicKeyPem: string
  readonly notBefore: Date
  readonly notAfter: Date
}): Certificate {
  const certificate = forge.pki.createCertificate()
  certificate.publicKey = forge.pki.publicKeyFromPem(options.publicKeyPem)
  certificate.serialNumber = serialNumber()
  certificate.validity.notBefore = options.notBefore
  certificate.validity.notAfter = options.notAfter
  return certificate
}

/**
 * A self-signed root as Istio's self-signed CA makes one (NewSelfSignedIstioCAOptions): subject
 * O=<trust domain>, CA:TRUE and keyCertSign (critical, as Go marks both), a subject key identifier.
 */
export function signRootCertificate(options: {
  readonly publicKeyPem: string
  readonly privateKeyPem: string
  readonly organization: string
  readonly notBefore: Date
  readonly notAfter: Date
}): Promise<string> {
  const certificate = newCertificate(options)
  const subject = [{ shortName: 'O', value: options.organization }]
  certificate.setSubject(subject)
  certificate.setIssuer(subject)
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  return signAndEncode(certificate, createPrivateKey(options.privateKeyPem))
}

/** The signer's key identifier: its subjectKeyIdentifier extension, or the SHA-1 of its public key (RFC 5280 4.2.1.2). */
function authorityKeyIdentifier(signer: Certificate): string {
  const extension = signer.getExtension('subjectKeyIdentifier')
  if (extension?.subjectKeyIdentifier !== undefined)
    return forge.util.hexToBytes(extension.subjectKeyIdentifier)
  return signer.generateSubjectKeyIdentifier().getBytes()
}

/**
 * A workload certificate as Istio's CA signs a CSR (genCertTemplateFromCSR): an empty subject, the
 * SPIFFE ID as the only URI SAN (critical, since the subject is empty: RFC 5280 4.2.1.6), CA:FALSE,
 * digitalSignature + keyEncipherment, serverAuth + clientAuth, NotBefore backdated by the clock-skew grace.
 */
export function signWorkloadCertificate(options: {
  readonly publicKeyPem: string
  readonly spiffeId: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly signer: ForgeSigner
}): Promise<string> {
  const certificate = newCertificate(options)
  certificate.setSubject([])
  certificate.setIssuer(options.signer.certificate.subject.attributes)
  const extensions: Extension[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyIdentifier(options.signer.certificate) },
    { name: 'subjectAltName', altNames: [{ type: 6, value: options.spiffeId }], critical: true },
  ]
  certificate.setExtensions(extensions)
  return signAndEncode(certificate, options.signer.privateKey)
}
