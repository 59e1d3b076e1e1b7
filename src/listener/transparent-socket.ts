// A listening socket with IP_TRANSPARENT (TPROXY's inbound listener), made through libc because Node cannot set the option, and handed to node:net by fd.

import { isIP } from 'node:net'
import {
  AF_INET,
  AF_INET6,
  EPERM,
  IP_TRANSPARENT,
  IPV6_TRANSPARENT,
  IPV6_V6ONLY,
  libc,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  writeSockaddr,
} from './libc.ts'

/** A failure to make the transparent socket; `capability` is set when CAP_NET_ADMIN is what is missing. */
export class TransparentSocketError extends Error {
  readonly code = 'ERR_TRANSPARENT_SOCKET'
}

function int(value: number): Buffer {
  const buffer = Buffer.alloc(4)
  buffer.writeInt32LE(value, 0)
  return buffer
}

/**
 * Creates, binds and starts listening on a TCP socket with IP_TRANSPARENT (IPV6_TRANSPARENT too on an
 * IPv6 address), as Envoy's listener `transparent: true` does for Istio's TPROXY mode; SO_REUSEPORT lets
 * every worker thread open its own. Returns the fd for `server.listen({ fd })`. Setting the option needs
 * CAP_NET_ADMIN (a proxy running as uid 1337 gets it as an ambient capability).
 */
export function openTransparentSocket(address: string, port: number, backlog: number): number {
  const calls = libc()
  const ipv6 = isIP(address) === 6
  const fd = calls.socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
  if (fd < 0) throw new TransparentSocketError(`socket(): ${calls.lastError().message}`)
  const fail = (what: string): never => {
    const error = calls.lastError()
    calls.close(fd)
    if (error.errno === EPERM && what.includes('TRANSPARENT'))
      throw new TransparentSocketError(
        `${what} on ${address}:${port}: ${error.message}: TPROXY capture needs the CAP_NET_ADMIN capability (give the proxy's user ambient CAP_NET_ADMIN, as Istio's tproxy mode does)`,
      )
    throw new TransparentSocketError(`${what} on ${address}:${port}: ${error.message}`)
  }
  const one = int(1)
  if (calls.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail('SO_REUSEADDR')
  if (calls.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) !== 0) fail('SO_REUSEPORT')
  if (calls.setsockopt(fd, SOL_IP, IP_TRANSPARENT, one, 4) !== 0) fail('IP_TRANSPARENT')
  if (ipv6) {
    if (calls.setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, one, 4) !== 0) fail('IPV6_TRANSPARENT')
    // `::` takes IPv4 too, as Node's own dual-stack listeners do.
    if (calls.setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, int(0), 4) !== 0) fail('IPV6_V6ONLY')
  }
  const sockaddr = writeSockaddr(address, port, ipv6)
  if (calls.bind(fd, sockaddr, sockaddr.length) !== 0) fail('bind')
  if (calls.listen(fd, backlog) !== 0) fail('listen')
  return fd
}
