// Istio's AuthorizationPolicy on an HTTP request (Envoy's RBAC filters as pilot builds them): 403 `RBAC: access denied`.

import type { TLSSocket } from 'node:tls'
import { type AuthzFacts, plainIp } from '../../authz/authz-facts.ts'
import { denialDetails } from '../../authz/authz-policies.ts'
import type { ListenerModel } from '../../config/model.ts'
import { originalDestination } from '../../protocol/original-destination.ts'
import type { PeerIdentity, RequestPrincipal } from '../../protocol/peer-identity.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import { GrpcStatus, isGrpcRequest } from '../grpc.ts'
import type { RequestContext } from '../request-context.ts'
import { sendGrpcReply, sendResponse } from '../respond.ts'

/** Envoy's RBAC filter body (source/extensions/filters/http/rbac/rbac_filter.cc); Envoy sets no response flag. */
export const RBAC_DENIED_BODY = 'RBAC: access denied'

/**
 * Reads the listener's compiled policies (inbound listeners only): a listener without any pays one
 * property read. A denial answers 403 with Envoy's details `rbac_access_denied_matched_policy[<policy>]`,
 * which the debug request log prints; a gRPC client gets PERMISSION_DENIED, as Envoy's local reply maps 403.
 */
export class AuthorizationFilter implements HttpFilter {
  readonly name = 'authorization'

  appliesTo(listener: ListenerModel): boolean {
    return listener.authz !== undefined
  }

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const authz = ctx.listenerModel.authz
    if (authz === undefined) return 'continue'
    const denied = authz.http.denial(new HttpAuthzFacts(ctx))
    if (denied === undefined) return 'continue'
    ctx.responseCodeDetails = denialDetails(denied)
    if (isGrpcRequest(ctx)) sendGrpcReply(ctx, GrpcStatus.permissionDenied, RBAC_DENIED_BODY)
    else sendResponse(ctx, 403, RBAC_DENIED_BODY)
    return 'stop'
  }
}

/** A request's attributes as AuthorizationPolicy names them; each is read only if a rule asks for it. */
class HttpAuthzFacts implements AuthzFacts {
  readonly #ctx: RequestContext

  constructor(ctx: RequestContext) {
    this.#ctx = ctx
  }

  get method(): string {
    return this.#ctx.method
  }

  get path(): string {
    return this.#ctx.path
  }

  get host(): string {
    return this.#ctx.authority
  }

  /** The port the client connected to: the original destination's under capture (Envoy's destination port). */
  get port(): number {
    return originalDestination(this.#ctx.req.socket)?.port ?? this.#ctx.listenerModel.port
  }

  get sourceIp(): string {
    return plainIp(this.#ctx.req.socket.remoteAddress)
  }

  get remoteIp(): string {
    return this.sourceIp
  }

  get destinationIp(): string {
    const socket = this.#ctx.req.socket
    return plainIp(originalDestination(socket)?.address ?? socket.localAddress)
  }

  get sni(): string {
    const socket = this.#ctx.req.socket as Partial<TLSSocket>
    return typeof socket.servername === 'string' ? socket.servername : ''
  }

  get peer(): PeerIdentity | undefined {
    return this.#ctx.peer
  }

  get requestPrincipal(): RequestPrincipal | undefined {
    return this.#ctx.requestPrincipal
  }

  header(name: string): string | undefined {
    return this.#ctx.header(name)
  }
}
