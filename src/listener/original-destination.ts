// Reads where a captured connection was going: SO_ORIGINAL_DST after an iptables REDIRECT, the socket's own local address under TPROXY.

import { isIP, type Socket } from 'node:net'
import type { OriginalDestination } from '../protocol/original-destination.ts'
import { libc, readSockaddr, SO_ORIGINAL_DST, SOL_IP, SOL_IPV6 } from './libc.ts'

/** How the capture rules hand connections over: NAT REDIRECT (`iptables`) or TPROXY. */
export type CaptureMode = 'iptables' | 'tproxy'

/** The accepted socket's file descriptor; Node keeps it on its TCP handle and has no public accessor. */
export function socketFd(socket: Socket): number {
  const fd = (socket as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0)
    throw new Error('the accepted socket has no file descriptor (node:net internals changed?)')
  return fd
}

/** `::ffff:a.b.c.d` (an IPv4 client of a dual-stack socket) as `a.b.c.d`. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/**
 * The original destination of `socket`, as Envoy's original_dst listener filter finds it
 * (source/extensions/filters/listener/original_dst, os_sys_calls getsockopt SO_ORIGINAL_DST): under
 * REDIRECT netfilter's conntrack entry tells it, for IPv6 through IP6T_SO_ORIGINAL_DST; a connection
 * that was not redirected (no NAT entry: someone connected to the capture port itself) keeps its local
 * address, as Envoy does. Under TPROXY the local address is the original destination.
 */
export function readOriginalDestination(socket: Socket, mode: CaptureMode): OriginalDestination | undefined {
  const local = socket.localAddress
  const localPort = socket.localPort
  if (local === undefined || localPort === undefined) return undefined
  const address = plainAddress(local)
  if (mode === 'tproxy') return { address, port: localPort }
  const ipv6 = isIP(address) === 6
  const value = Buffer.alloc(ipv6 ? 28 : 16)
  const length = [value.length]
  const calls = libc()
  const result = calls.getsockopt(socketFd(socket), ipv6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, value, length)
  if (result !== 0) return { address, port: localPort }
  const destination = readSockaddr(value)
  return destination === undefined
    ? { address, port: localPort }
    : { ...destination, address: plainAddress(destination.address) }
}
