// A TLS port with the mTLS ports' secure context, ALPN and handshake timeout but no client certificate asked for, for scanners that cannot present one (scripts/testssl-scan.sh).

import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { join } from 'node:path'
import { createServer } from 'node:tls'
import { contextOptions, MTLS_ALPN_PROTOCOLS } from '../../src/tls/mtls-terminator.ts'
import { TLS_HANDSHAKE_TIMEOUT_MS } from '../../src/tls/tls-defaults.ts'

// Usage: tls-scan-target.ts <dir with key.pem, cert-chain.pem, root-cert.pem> <port>
const [dir, port] = process.argv.slice(2)
if (dir === undefined || port === undefined) {
  console.error('usage: tls-scan-target.ts CERT_DIR PORT')
  process.exit(2)
}
const read = (name: string): Buffer => readFileSync(join(dir, name))
const server = createServer(
  {
    ...contextOptions({
      key: read('key.pem'),
      certChain: read('cert-chain.pem'),
      rootCert: read('root-cert.pem'),
      spiffeId: '',
      notBefore: new Date(),
      notAfter: new Date(),
    }),
    // The only difference from an mTLS port: Envoy's require_client_certificate is off.
    requestCert: false,
    ALPNProtocols: MTLS_ALPN_PROTOCOLS,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  },
  // Served as the proxy serves an mTLS connection: HTTP/1.1 with keep-alive, the connection left open.
  (socket) => http.emit('connection', socket),
)
const http = createHttpServer((_req, res) => res.end('ok'))
server.on('tlsClientError', () => {})
server.listen(Number(port), '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`))
