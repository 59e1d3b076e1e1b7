// The original destination of a captured connection, attached to its socket by the capture listener and read by routing, upstream and telemetry.

/** Where the client meant to connect before capture redirected it (Envoy's use_original_dst). */
export interface OriginalDestination {
  /** A plain IP address (IPv4 never in its `::ffff:` mapped form). */
  readonly address: string
  readonly port: number
}

const destinationKey = Symbol('outrigger.originalDestination')

interface MarkedSocket {
  [destinationKey]?: OriginalDestination
  /** node:tls keeps the socket a TLSSocket wraps here. */
  _parent?: MarkedSocket | null
}

/** Marks the accepted socket of a captured connection with its original destination. */
export function setOriginalDestination(socket: object, destination: OriginalDestination): void {
  ;(socket as MarkedSocket)[destinationKey] = destination
}

/**
 * The original destination of the connection `socket` belongs to, or undefined when it was not
 * captured. A TLS socket (mTLS termination) is read through the socket it wraps; node:http2's session
 * socket forwards property reads to its socket, so it works there too.
 */
export function originalDestination(socket: object | undefined): OriginalDestination | undefined {
  const marked = socket as MarkedSocket | undefined
  return marked?.[destinationKey] ?? marked?._parent?.[destinationKey]
}
