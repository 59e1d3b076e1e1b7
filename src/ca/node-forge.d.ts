// Type declarations for the parts of `node-forge` (shipped without types) that the certificate authority uses.

declare module 'node-forge' {
  interface ByteStringBuffer {
    getBytes(): string
    toHex(): string
  }
  /** An opaque key object (forge's RSA public or private key). */
  interface ForgeKey {
    readonly n: unknown
  }
  interface NameAttribute {
    readonly name?: string
    readonly shortName?: string
    readonly type?: string
    readonly value: string
  }
  /** An extension as forge takes it: a name, `critical`, and fields that depend on the name. */
  interface Extension {
    readonly name: string
    readonly critical?: boolean
    readonly [field: string]: unknown
  }
  /** An ASN.1 node (forge.asn1). */
  interface Asn1 {
    readonly tagClass: number
  }
  interface Certificate {
    version: number
    signatureOid: string | null
    signature: string | null
    readonly siginfo: { algorithmOid: string | null }
    tbsCertificate: Asn1 | undefined
    serialNumber: string
    validity: { notBefore: Date; notAfter: Date }
    publicKey: ForgeKey
    readonly subject: { readonly attributes: NameAttribute[] }
    readonly issuer: { readonly attributes: NameAttribute[] }
    setSubject(attributes: NameAttribute[]): void
    setIssuer(attributes: NameAttribute[]): void
    setExtensions(extensions: Extension[]): void
    getExtension(name: string): (Extension & { subjectKeyIdentifier?: string }) | null
    generateSubjectKeyIdentifier(): ByteStringBuffer
  }
  interface Forge {
    pki: {
      createCertificate(): Certificate
      certificateToPem(certificate: Certificate): string
      certificateFromPem(pem: string): Certificate
      publicKeyFromPem(pem: string): ForgeKey
      privateKeyFromPem(pem: string): ForgeKey
      getTBSCertificate(certificate: Certificate): Asn1
      readonly oids: Readonly<Record<string, string>>
    }
    asn1: { toDer(node: Asn1): ByteStringBuffer }
    util: { hexToBytes(hex: string): string }
  }
  const forge: Forge
  export default forge
  export type { Certificate, Extension, ForgeKey, NameAttribute }
}
