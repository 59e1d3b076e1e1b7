// Terminates TLS on a listener's connections: a node:tls server that never listens does the handshakes, with certificates reloaded when their files change.

import type { Socket } from 'node:net'
import { createServer, type TLSSocket, type Server as TlsServer } from 'node:tls'
import { FileWatcher } from '../files/file-watcher.ts'
import { log } from '../telemetry/log.ts'
import {
  checkCredentials,
  readCredentials,
  sameCredentials,
  secureContextOptions,
  TlsFileError,
} from './server-credentials.ts'
import { subjectAltNameAllowed } from './subject-alt-names.ts'
import { TLS_HANDSHAKE_TIMEOUT_MS } from './tls-defaults.ts'
import type { DownstreamTlsModel, TlsCredentials } from './tls-model.ts'

/** What serves a connection once its handshake is done and its client accepted. */
export type SecureHandler = (socket: TLSSocket) => void

/** Where a listener counts its handshakes (Envoy's listener ssl.handshake and ssl.connection_error). */
export interface HandshakeCounts {
  handshake(): void
  connectionError(): void
}

/** Protocols offered by ALPN, as Istio configures Envoy for HTTP (and TLS-terminated TCP) listeners. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1']

/** The settings that need a new node:tls server when they change (the file contents do not). */
function settingsKey(model: DownstreamTlsModel): string {
  const { mode, files, subjectAltNames, minVersion, maxVersion, ciphers } = model
  return JSON.stringify({ mode, files, subjectAltNames, minVersion, maxVersion, ciphers })
}

export class TlsTerminator {
  readonly #listenerName: string
  #model: DownstreamTlsModel
  #key: string
  #credentials: TlsCredentials
  #server: TlsServer
  #watcher: FileWatcher
  #serve: SecureHandler | undefined
  /** Bumped by every model update and file change, so a slow re-read never overwrites a newer one. */
  #generation = 0

  readonly #counts: HandshakeCounts | undefined

  constructor(listenerName: string, model: DownstreamTlsModel, counts?: HandshakeCounts) {
    this.#listenerName = listenerName
    this.#counts = counts
    this.#model = model
    this.#key = settingsKey(model)
    this.#credentials = model.credentials
    this.#server = this.#makeServer()
    this.#watcher = this.#watch()
  }

  /**
   * Starts the handshake on a just-accepted `socket`; `serve` gets the TLS socket once it is secure
   * and its client accepted. A listener's dispatcher passes the same handler for every connection.
   */
  accept(socket: Socket, serve: SecureHandler): void {
    this.#serve = serve
    this.#server.emit('connection', socket)
  }

  /** The certificate files' contents that new handshakes use. */
  get credentials(): TlsCredentials {
    return this.#credentials
  }

  /**
   * Follows a reload of the listener's model. Connections already established keep their TLS session;
   * new handshakes use the new settings and the credentials the new model was compiled with.
   */
  update(model: DownstreamTlsModel): void {
    this.#generation++
    const key = settingsKey(model)
    const filesChanged = JSON.stringify(model.files) !== JSON.stringify(this.#model.files)
    this.#model = model
    if (key !== this.#key) {
      this.#key = key
      this.#credentials = model.credentials
      this.#server = this.#makeServer()
    } else if (!sameCredentials(model.credentials, this.#credentials)) {
      this.#credentials = model.credentials
      this.#server.setSecureContext(secureContextOptions(model, model.credentials))
    }
    if (filesChanged) {
      this.#watcher.close()
      this.#watcher = this.#watch()
    }
  }

  /** Stops watching the files (the listener is gone); handshakes under way finish. */
  close(): void {
    this.#generation++
    this.#watcher.close()
  }

  #makeServer(): TlsServer {
    const model = this.#model
    const server = createServer({
      ...secureContextOptions(model, this.#credentials),
      requestCert: model.mode !== 'SIMPLE',
      // MUTUAL: a client without a certificate fails the handshake; one with a bad certificate is closed.
      rejectUnauthorized: model.mode === 'MUTUAL',
      ALPNProtocols: ALPN_PROTOCOLS,
      handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    })
    server.on('secureConnection', this.#onSecure)
    server.on('tlsClientError', this.#onClientError)
    return server
  }

  #watch(): FileWatcher {
    const { files } = this.#model
    const paths = [files.serverCertificate, files.privateKey, files.caCertificates, files.caCrl]
    const watcher = new FileWatcher(() => void this.#reloadFiles())
    watcher.watch(paths.filter((path): path is string => path !== undefined))
    return watcher
  }

  /** Re-reads the files; good new contents serve the next handshakes, bad ones are logged and ignored. */
  async #reloadFiles(): Promise<void> {
    const generation = ++this.#generation
    const model = this.#model
    let credentials: TlsCredentials
    try {
      credentials = await readCredentials(model.files)
      if (generation !== this.#generation) return
      if (sameCredentials(credentials, this.#credentials)) return
      checkCredentials(model, credentials)
    } catch (error) {
      if (generation !== this.#generation) return
      const reason = error instanceof TlsFileError ? error.message : (error as Error).message
      log.error(
        `${model.source.file}:${model.source.line}: listener ${this.#listenerName}: certificate files changed but ` +
          `cannot be used, new connections keep the previous certificate: ${reason}`,
      )
      return
    }
    this.#credentials = credentials
    this.#server.setSecureContext(secureContextOptions(model, credentials))
    log.info(`listener ${this.#listenerName}: reloaded TLS certificate ${model.files.serverCertificate}`)
  }

  readonly #onSecure = (socket: TLSSocket): void => {
    this.#counts?.handshake()
    const model = this.#model
    if (model.mode !== 'SIMPLE') {
      const certificate = socket.getPeerCertificate()
      const presented = certificate !== null && Object.keys(certificate).length > 0
      // OPTIONAL_MUTUAL: a client may go without a certificate, but one it presents must verify.
      if (presented && !socket.authorized) {
        this.#reject(socket, `client certificate not accepted: ${String(socket.authorizationError)}`)
        return
      }
      if (presented && model.subjectAltNames.length > 0) {
        if (!subjectAltNameAllowed(certificate, model.subjectAltNames)) {
          this.#reject(
            socket,
            `client certificate SANs ${certificate.subjectaltname ?? '(none)'} not allowed`,
          )
          return
        }
      }
    }
    socket.on('error', (err: Error) =>
      log.debug(`listener ${this.#listenerName}: TLS connection ${peer(socket)}: ${err.message}`),
    )
    this.#serve?.(socket)
  }

  readonly #onClientError = (err: Error, socket: TLSSocket): void => {
    this.#counts?.connectionError()
    log.debug(`listener ${this.#listenerName}: TLS handshake with ${peer(socket)} failed: ${err.message}`)
  }

  #reject(socket: TLSSocket, reason: string): void {
    log.info(`listener ${this.#listenerName}: TLS connection from ${peer(socket)} closed: ${reason}`)
    socket.destroy()
  }
}

function peer(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`
}
