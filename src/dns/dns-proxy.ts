// Istio's DNS proxy (pilot-agent pkg/dns/client): UDP and TCP on one port; ServiceEntry names answered from the current model, others forwarded upstream.

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram'
import { createServer, isIP, type Server, type Socket } from 'node:net'
import * as dnsPacket from 'dns-packet'
import type { DnsTable } from '../config/compile/dns-table.ts'
import { log } from '../telemetry/log.ts'
import type { DnsStats } from './dns-stats.ts'
import { lookupName } from './name-lookup.ts'
import type { ResolverConfig } from './resolv-conf.ts'
import { exchangeTcp, exchangeUdp } from './upstream-exchange.ts'

type Transport = 'udp' | 'tcp'

export interface DnsProxyOptions {
  readonly address: string
  /** 0: the OS picks one port, shared by UDP and TCP. */
  readonly port: number
  readonly resolvers: ResolverConfig
  /** The current model's table; undefined before the first model, when every query fails with SERVFAIL (as Istio's agent before its first sync). */
  readonly table: () => DnsTable | undefined
  readonly stats?: DnsStats
}

const QR = 0x8000
/** Opcode, recursion desired and checking disabled: the bits a reply copies from its query (miekg/dns SetReply). */
const COPIED_FLAGS = 0x7800 | dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED
const RCODE_FORMERR = 1
const RCODE_SERVFAIL = 2
/** The largest UDP answer without EDNS (RFC 1035 4.2.1); a client advertising less still gets this much. */
const MIN_UDP_SIZE = 512
const MAX_TCP_SIZE = 65535
/** miekg/dns's server closes an idle TCP connection after 8 s. */
const TCP_IDLE_TIMEOUT_MS = 8000

export class DnsProxy {
  readonly #options: DnsProxyOptions
  #udp: UdpSocket | undefined
  #tcp: Server | undefined
  readonly #connections = new Set<Socket>()
  #port = 0

  constructor(options: DnsProxyOptions) {
    this.#options = options
  }

  /** The bound port (UDP and TCP). */
  get port(): number {
    return this.#port
  }

  /** Binds UDP, then TCP on the same port; rejects when either cannot be bound. */
  async start(): Promise<void> {
    const { address } = this.#options
    const udp = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4')
    this.#udp = udp
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(this.#options.port, address, () => {
        udp.off('error', reject)
        resolve()
      })
    })
    udp.on('error', (error) => log.warning(`DNS proxy UDP socket: ${error.message}`))
    udp.on('message', (message: Buffer, peer: RemoteInfo) => this.#onDatagram(message, peer))
    this.#port = udp.address().port
    const tcp = createServer((socket) => this.#onConnection(socket))
    this.#tcp = tcp
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject)
      tcp.listen(this.#port, address, () => {
        tcp.off('error', reject)
        resolve()
      })
    })
    tcp.on('error', (error) => log.warning(`DNS proxy TCP listener: ${error.message}`))
    const upstream = this.#options.resolvers.servers.map((s) => `${s.address}:${s.port}`).join(', ')
    log.info(
      `DNS proxy on ${address}:${this.#port} (UDP and TCP), forwarding to ${upstream || 'no upstream server'}`,
    )
  }

  async close(): Promise<void> {
    const udp = this.#udp
    const tcp = this.#tcp
    this.#udp = undefined
    this.#tcp = undefined
    if (udp !== undefined) await new Promise<void>((resolve) => udp.close(() => resolve()))
    for (const socket of this.#connections) socket.destroy()
    if (tcp !== undefined) await new Promise<void>((resolve) => tcp.close(() => resolve()))
  }

  #onDatagram(message: Buffer, peer: RemoteInfo): void {
    void this.#answer(message, 'udp').then((reply) => {
      if (reply !== undefined) this.#udp?.send(reply, peer.port, peer.address, () => {})
    })
  }

  /** Reads length-prefixed queries (RFC 1035 4.2.2); each is answered as soon as it can be, in any order (RFC 7766 6.2.1.1). */
  #onConnection(socket: Socket): void {
    this.#connections.add(socket)
    socket.setTimeout(TCP_IDLE_TIMEOUT_MS, () => socket.destroy())
    socket.on('close', () => this.#connections.delete(socket))
    socket.on('error', () => socket.destroy())
    let pending: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= 2) {
        const size = pending.readUInt16BE(0)
        if (pending.length < 2 + size) break
        const query = pending.subarray(2, 2 + size)
        pending = pending.subarray(2 + size)
        void this.#answer(query, 'tcp').then((reply) => {
          if (reply === undefined || socket.destroyed) return
          const length = Buffer.alloc(2)
          length.writeUInt16BE(reply.length)
          socket.write(Buffer.concat([length, reply]))
        })
      }
    })
  }

  /** The reply to one message, or undefined when none is due (not a query, or too short to carry an ID). Never rejects. */
  async #answer(message: Buffer, transport: Transport): Promise<Buffer | undefined> {
    this.#options.stats?.requests.inc()
    let query: dnsPacket.DecodedPacket
    try {
      query = dnsPacket.decode(message)
    } catch {
      return formatError(message)
    }
    if (query.type !== 'query') return undefined
    try {
      const reply = await this.#reply(query, message, transport)
      return fitted(reply, query, transport)
    } catch (error) {
      log.warning(`DNS proxy: ${(error as Error).message}`)
      return failure(query, RCODE_SERVFAIL)
    }
  }

  async #reply(query: dnsPacket.DecodedPacket, message: Buffer, transport: Transport): Promise<Buffer> {
    const question = query.questions?.[0]
    if (question === undefined) return failure(query, RCODE_SERVFAIL)
    const table = this.#options.table()
    if (table === undefined) return failure(query, RCODE_SERVFAIL)
    const answers = lookupName(table, this.#options.resolvers.search, question.type, question.name)
    if (answers === undefined) return this.#forward(query, message, transport)
    // The proxy is the authority for the names it holds (Istio sets Authoritative).
    return dnsPacket.encode({
      id: query.id,
      type: 'response',
      flags: ((query.flags ?? 0) & COPIED_FLAGS) | dnsPacket.AUTHORITATIVE_ANSWER,
      questions: query.questions,
      answers,
    })
  }

  /**
   * The upstream's answer, relayed byte for byte (its ID is the query's): each server in turn, the next
   * after a failure or 5 s without an answer; SERVFAIL when none answers (Istio's queryUpstream).
   */
  async #forward(query: dnsPacket.DecodedPacket, message: Buffer, transport: Transport): Promise<Buffer> {
    const stats = this.#options.stats
    stats?.upstreamRequests.inc()
    const started = process.hrtime.bigint()
    for (const server of this.#options.resolvers.servers) {
      try {
        const answer = await (transport === 'udp'
          ? exchangeUdp(server, message)
          : exchangeTcp(server, message))
        stats?.upstreamDuration.observe(Number(process.hrtime.bigint() - started) / 1e9)
        return answer
      } catch (error) {
        log.info(`DNS proxy upstream failure: ${(error as Error).message}`)
      }
    }
    stats?.upstreamFailures.inc()
    return failure(query, RCODE_SERVFAIL)
  }
}

/** A header-only reply with `rcode` (and the question) to a query that was decoded. */
function failure(query: dnsPacket.DecodedPacket, rcode: number): Buffer {
  return dnsPacket.encode({
    id: query.id,
    type: 'response',
    flags: ((query.flags ?? 0) & COPIED_FLAGS) | rcode,
    questions: query.questions,
  })
}

/** FORMERR to a message with a query's header that does not decode; nothing to anything shorter or to a response. */
function formatError(message: Buffer): Buffer | undefined {
  if (message.length < 12 || (message.readUInt16BE(2) & QR) !== 0) return undefined
  const reply = Buffer.alloc(12)
  reply.writeUInt16BE(message.readUInt16BE(0), 0)
  reply.writeUInt16BE(QR | (message.readUInt16BE(2) & COPIED_FLAGS) | RCODE_FORMERR, 2)
  return reply
}

/**
 * The reply as it may be sent: over UDP at most the size the query advertises in its EDNS OPT record
 * (512 without one, as Istio's Truncate(size)); a reply too big for that goes out truncated (TC set, the
 * question only), and the client asks again over TCP.
 */
function fitted(reply: Buffer, query: dnsPacket.DecodedPacket, transport: Transport): Buffer {
  const limit = transport === 'tcp' ? MAX_TCP_SIZE : udpLimit(query)
  if (reply.length <= limit) return reply
  return dnsPacket.encode({
    id: query.id,
    type: 'response',
    flags: (reply.readUInt16BE(2) & 0x7fff) | dnsPacket.TRUNCATED_RESPONSE,
    questions: query.questions,
  })
}

function udpLimit(query: dnsPacket.DecodedPacket): number {
  for (const record of query.additionals ?? []) {
    if (record.type === 'OPT') return Math.max(MIN_UDP_SIZE, record.udpPayloadSize)
  }
  return MIN_UDP_SIZE
}
