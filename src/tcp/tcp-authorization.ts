// Istio's AuthorizationPolicy on a TCP connection (Envoy's network RBAC filter): the deciding policy when it is denied.

import type { TLSSocket } from 'node:tls'
import { type AuthzFacts, plainIp } from '../authz/authz-facts.ts'
import { originalDestination } from '../protocol/original-destination.ts'
import type { PeerIdentity, RequestPrincipal } from '../protocol/peer-identity.ts'
import type { TcpContext } from './tcp-context.ts'

/**
 * The policy that denies this connection (`none` when ALLOW policies exist and none matched), or undefined
 * when it may pass. The TCP view of the policies has no HTTP-only field left (pilot's builder for TCP).
 */
export function tcpDenial(ctx: TcpContext): string | undefined {
  const authz = ctx.listener.model.authz
  if (authz === undefined) return undefined
  return authz.tcp.denial(new TcpAuthzFacts(ctx))
}

/** A connection's attributes; a TCP rule never names the HTTP ones, which read as empty. */
class TcpAuthzFacts implements AuthzFacts {
  readonly #ctx: TcpContext
  readonly method = ''
  readonly path = ''
  readonly host = ''
  readonly requestPrincipal: RequestPrincipal | undefined = undefined

  constructor(ctx: TcpContext) {
    this.#ctx = ctx
  }

  /** The port the client connected to: the original destination's under capture (Envoy's destination port). */
  get port(): number {
    return originalDestination(this.#ctx.downstream)?.port ?? this.#ctx.listener.model.port
  }

  get sourceIp(): string {
    return plainIp(this.#ctx.downstream.remoteAddress)
  }

  get remoteIp(): string {
    return this.sourceIp
  }

  get destinationIp(): string {
    return plainIp(this.#ctx.destinationAddress)
  }

  get sni(): string {
    const servername = (this.#ctx.downstream as Partial<TLSSocket>).servername
    return this.#ctx.sni ?? (typeof servername === 'string' ? servername : '')
  }

  get peer(): PeerIdentity | undefined {
    return this.#ctx.peer
  }

  header(): string | undefined {
    return undefined
  }
}
