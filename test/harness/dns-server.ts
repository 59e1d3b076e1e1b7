// A real DNS server on loopback UDP and TCP (one port) for tests: answers A and AAAA from a table the test changes (dns-packet).

import { createSocket, type Socket as DgramSocket, type RemoteInfo } from 'node:dgram'
import { createServer, isIP, type Server, type Socket } from 'node:net'
import * as dnsPacket from 'dns-packet'

/** What the server answers for a name: its addresses and their TTL, or a failure code. */
export type DnsRecords = { readonly addresses: readonly string[]; readonly ttl?: number } | 'SERVFAIL'

export interface DnsServer {
  /** `127.0.0.1:<port>`, as the bootstrap's `dns.servers` takes it. */
  readonly address: string
  /** Queries received, by `name type` (e.g. `db.example.com A`). */
  readonly queries: Map<string, number>
  /** The queries of `queries` that came over TCP. */
  readonly queriesOverTcp: Map<string, number>
  /** Sets what `name` resolves to; unknown names get NXDOMAIN. */
  set(name: string, records: DnsRecords): void
  close(): Promise<void>
}

const NXDOMAIN = 3
const SERVFAIL = 2

export async function startDnsServer(): Promise<DnsServer> {
  const table = new Map<string, DnsRecords>()
  const queries = new Map<string, number>()
  const queriesOverTcp = new Map<string, number>()

  const answer = (query: dnsPacket.Packet, overTcp = false): dnsPacket.Packet => {
    const question = query.questions?.[0]
    const base = { type: 'response' as const, id: query.id, questions: query.questions }
    const flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE
    if (question === undefined) return { ...base, flags: flags | SERVFAIL }
    const key = `${question.name.toLowerCase()} ${question.type}`
    queries.set(key, (queries.get(key) ?? 0) + 1)
    if (overTcp) queriesOverTcp.set(key, (queriesOverTcp.get(key) ?? 0) + 1)
    const records = table.get(question.name.toLowerCase())
    if (records === undefined) return { ...base, flags: flags | NXDOMAIN }
    if (records === 'SERVFAIL') return { ...base, flags: flags | SERVFAIL }
    const version = question.type === 'A' ? 4 : question.type === 'AAAA' ? 6 : 0
    const answers: dnsPacket.Answer[] = records.addresses
      .filter((a) => isIP(a) === version)
      .map((data) => ({
        type: question.type as 'A' | 'AAAA',
        name: question.name,
        ttl: records.ttl ?? 0,
        data,
      }))
    return { ...base, flags: flags | dnsPacket.AUTHORITATIVE_ANSWER, answers }
  }

  const udpSocket = (): DgramSocket => {
    const socket = createSocket('udp4')
    socket.on('message', (message: Buffer, peer: RemoteInfo) => {
      let reply: Buffer
      try {
        reply = dnsPacket.encode(answer(dnsPacket.decode(message)))
      } catch {
        return
      }
      socket.send(reply, peer.port, peer.address)
    })
    return socket
  }
  // TCP on the same port: length-prefixed messages (RFC 1035 4.2.2), answered in full whatever their size.
  const connections = new Set<Socket>()
  const tcp = createServer((connection) => {
    connections.add(connection)
    connection.on('close', () => connections.delete(connection))
    connection.on('error', () => connection.destroy())
    let pending = Buffer.alloc(0)
    connection.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const message = pending.subarray(2, 2 + pending.readUInt16BE(0))
        pending = pending.subarray(2 + message.length)
        try {
          connection.write(dnsPacket.streamEncode(answer(dnsPacket.decode(message), true)))
        } catch {
          connection.destroy()
        }
      }
    })
  })
  const socket = await bindBoth(udpSocket, tcp)
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    queriesOverTcp,
    set: (name, records) => void table.set(name.toLowerCase(), records),
    close: async () => {
      for (const connection of connections) connection.destroy()
      await new Promise<void>((resolve) => tcp.close(() => resolve()))
      await new Promise<void>((resolve) => socket.close(() => resolve()))
    },
  }
}

/**
 * Binds UDP on a free port and TCP on the same one. The kernel picks the UDP port; another process may hold
 * that port for TCP (EADDRINUSE), so then both are tried again on a new port.
 */
async function bindBoth(udpSocket: () => DgramSocket, tcp: Server): Promise<DgramSocket> {
  for (let attempt = 1; ; attempt++) {
    const udp = udpSocket()
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve))
    const bound = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      tcp.once('error', resolve)
      tcp.listen(udp.address().port, '127.0.0.1', () => {
        tcp.off('error', resolve)
        resolve(undefined)
      })
    })
    if (bound === undefined) return udp
    await new Promise<void>((resolve) => udp.close(() => resolve()))
    if (bound.code !== 'EADDRINUSE' || attempt === 20) throw bound
  }
}
