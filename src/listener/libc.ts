// The few libc socket calls Node has no API for (getsockopt, setsockopt, socket, bind, listen), loaded once per thread through koffi.

import { createRequire } from 'node:module'

export interface Libc {
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: number[]): number
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number
  socket(family: number, type: number, protocol: number): number
  bind(fd: number, address: Buffer, length: number): number
  listen(fd: number, backlog: number): number
  close(fd: number): number
  /** The errno of the last call that failed, and its message. */
  lastError(): { readonly errno: number; readonly message: string }
}

let loaded: Libc | undefined

/** libc's socket calls; koffi's functions are per thread, and so is this cache (module state is per worker). */
export function libc(): Libc {
  if (loaded !== undefined) return loaded
  // Loaded on first use, under capture only: the native module costs about 5.6 MiB of RSS and 18 ms.
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
  const lib = koffi.load('libc.so.6')
  const strerror = lib.func('const char *strerror(int errnum)') as (errno: number) => string
  loaded = {
    getsockopt: lib.func(
      'int getsockopt(int fd, int level, int name, _Inout_ uint8_t *value, _Inout_ uint32_t *length)',
    ),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, uint8_t *value, uint32_t length)'),
    socket: lib.func('int socket(int family, int type, int protocol)'),
    bind: lib.func('int bind(int fd, uint8_t *address, uint32_t length)'),
    listen: lib.func('int listen(int fd, int backlog)'),
    close: lib.func('int close(int fd)'),
    lastError: () => {
      const errno = koffi.errno()
      return { errno, message: strerror(errno) }
    },
  }
  return loaded
}

export const AF_INET = 2
export const AF_INET6 = 10
export const SOL_IP = 0
export const SOL_IPV6 = 41
export const SOL_SOCKET = 1
/** netfilter's SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h). */
export const SO_ORIGINAL_DST = 80
export const IP_TRANSPARENT = 19
export const IPV6_TRANSPARENT = 75
export const SO_REUSEADDR = 2
export const SO_REUSEPORT = 15
export const IPV6_V6ONLY = 26
export const SOCK_STREAM = 1
export const SOCK_NONBLOCK = 0o4000
export const SOCK_CLOEXEC = 0o2000000
export const EPERM = 1

/** A `struct sockaddr_in` or `sockaddr_in6` read back as an address and port. */
export function readSockaddr(buffer: Buffer): { address: string; port: number } | undefined {
  const family = buffer.readUInt16LE(0)
  const port = buffer.readUInt16BE(2)
  if (family === AF_INET) return { address: `${buffer[4]}.${buffer[5]}.${buffer[6]}.${buffer[7]}`, port }
  if (family !== AF_INET6) return undefined
  const groups: string[] = []
  for (let i = 0; i < 8; i++) groups.push(buffer.readUInt16BE(8 + i * 2).toString(16))
  return { address: compressIpv6(groups), port }
}

/** `struct sockaddr_in` / `sockaddr_in6` for an IP address and port (bind). */
export function writeSockaddr(address: string, port: number, ipv6: boolean): Buffer {
  if (!ipv6) {
    const buffer = Buffer.alloc(16)
    buffer.writeUInt16LE(AF_INET, 0)
    buffer.writeUInt16BE(port, 2)
    const parts = address.split('.')
    for (let i = 0; i < 4; i++) buffer.writeUInt8(Number(parts[i]), 4 + i)
    return buffer
  }
  const buffer = Buffer.alloc(28)
  buffer.writeUInt16LE(AF_INET6, 0)
  buffer.writeUInt16BE(port, 2)
  const groups = expandIpv6(address)
  for (let i = 0; i < 8; i++) buffer.writeUInt16BE(groups[i], 8 + i * 2)
  return buffer
}

/** The longest run of zero groups written as `::`, as inet_ntop does. */
function compressIpv6(groups: readonly string[]): string {
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  if (bestStart === -1) return groups.join(':')
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`
}

function expandIpv6(address: string): number[] {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined]
  const parse = (part: string | undefined): number[] =>
    part === undefined || part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16))
  const front = parse(head)
  const back = parse(tail)
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back]
}
