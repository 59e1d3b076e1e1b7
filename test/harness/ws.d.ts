// Type declarations for the parts of the `ws` package (a test-only peer, shipped without types) the tests use.

declare module 'ws' {
  import type { ClientRequest, IncomingMessage } from 'node:http'
  import type { Duplex } from 'node:stream'

  export class WebSocket {
    constructor(address: string, options?: { headers?: Record<string, string>; handshakeTimeout?: number })
    send(data: string | Buffer): void
    close(code?: number, reason?: string): void
    terminate(): void
    on(event: 'open', listener: () => void): this
    on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this
    on(event: 'close', listener: (code: number, reason: Buffer) => void): this
    on(event: 'error', listener: (error: Error) => void): this
    on(
      event: 'unexpected-response',
      listener: (request: ClientRequest, response: IncomingMessage) => void,
    ): this
    once(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this
  }

  export class WebSocketServer {
    constructor(options: { noServer: true })
    handleUpgrade(
      request: IncomingMessage,
      socket: Duplex,
      head: Buffer,
      callback: (ws: WebSocket, request: IncomingMessage) => void,
    ): void
    close(): void
  }

  export default WebSocket
}
