// An ordinary client app for a namespace pod, driven by JSON lines on stdin: HTTP, TCP, gRPC calls and steady load.

import { promises as dns, type LookupAddress } from 'node:dns'
import { Agent, request } from 'node:http'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { Client, credentials, Metadata } from '@grpc/grpc-js'
import type { EchoReply } from '../harness/grpc.ts'
import type { AppReply } from './app-contract.ts'

/** A command the test sends; `id` comes back on its answer. */
export type ClientCommand = { readonly id: number } & (
  | {
      readonly op: 'http'
      readonly url: string
      readonly count: number
      readonly headers?: Record<string, string>
      readonly resolveWithDns?: boolean
    }
  | { readonly op: 'tcp'; readonly host: string; readonly port: number; readonly text: string }
  | { readonly op: 'grpc'; readonly target: string; readonly count: number }
  | { readonly op: 'resolve'; readonly name: string }
  | {
      readonly op: 'loadStart'
      readonly url: string
      readonly concurrency: number
      readonly headers?: Record<string, string>
    }
  | { readonly op: 'loadStop' }
)

/** The answers to N HTTP requests: status and serving pod counts, transport errors, and the last reply. */
export interface HttpTally {
  readonly statuses: Record<string, number>
  readonly pods: Record<string, number>
  readonly versions: Record<string, number>
  readonly errors: string[]
  readonly bodies: string[]
  readonly last?: AppReply
}

export interface TcpOutcome {
  readonly reply: string
  readonly error?: string
}

export interface GrpcTally {
  readonly servers: Record<string, number>
  readonly errors: string[]
}

export interface ResolveOutcome {
  readonly addresses: string[]
  readonly error?: string
}

/** Steady load's result: every request's outcome counted, each failure described. */
export interface LoadTally {
  readonly total: number
  readonly ok: number
  readonly pods: Record<string, number>
  readonly failures: string[]
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 })
/** The machine's resolvers (/etc/resolv.conf), queried for the name exactly as given, no search list. */
const resolver = new dns.Resolver({ timeout: 2_000, tries: 1 })

function dnsLookup(
  hostname: string,
  options: { all?: boolean },
  callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
): void {
  resolver.resolve4(hostname).then(
    (addresses) =>
      options.all
        ? callback(
            null,
            addresses.map((address) => ({ address, family: 4 })),
          )
        : callback(null, addresses[0], 4),
    (err: Error) => callback(err, ''),
  )
}

interface OneReply {
  readonly status: number
  readonly body: string
}

function get(url: string, headers: Record<string, string> = {}, resolveWithDns = false): Promise<OneReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent, headers, timeout: 5_000, ...(resolveWithDns ? { lookup: dnsLookup } : {}) },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('timed out after 5 s')))
    req.on('error', reject)
    req.end()
  })
}

const count = (tally: Record<string, number>, key: string): void => {
  tally[key] = (tally[key] ?? 0) + 1
}

function parseReply(body: string): AppReply | undefined {
  try {
    return JSON.parse(body) as AppReply
  } catch {
    return undefined
  }
}

async function httpTally(
  url: string,
  n: number,
  headers?: Record<string, string>,
  resolveWithDns?: boolean,
): Promise<HttpTally> {
  const tally = {
    statuses: {},
    pods: {},
    versions: {},
    errors: [] as string[],
    bodies: [] as string[],
    last: undefined as AppReply | undefined,
  }
  for (let i = 0; i < n; i++) {
    try {
      const { status, body } = await get(url, headers, resolveWithDns)
      count(tally.statuses, String(status))
      const reply = parseReply(body)
      if (reply === undefined) {
        if (tally.bodies.length < 5) tally.bodies.push(body)
        continue
      }
      count(tally.pods, reply.pod)
      count(tally.versions, reply.version)
      tally.last = reply
    } catch (err) {
      tally.errors.push((err as Error).message)
    }
  }
  return tally
}

function tcpExchange(host: string, port: number, text: string): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    let reply = ''
    const socket = connect({ host, port })
    const timer = setTimeout(() => socket.destroy(new Error('no reply within 3 s')), 3_000)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(text))
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (reply.endsWith(text)) socket.end()
    })
    socket.on('error', (err) => {
      clearTimeout(timer)
      resolve({ reply, error: err.message })
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ reply })
    })
  })
}

async function grpcTally(target: string, n: number): Promise<GrpcTally> {
  const client = new Client(target, credentials.createInsecure())
  const tally: GrpcTally = { servers: {}, errors: [] }
  const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))
  const deserialize = (bytes: Buffer): EchoReply => JSON.parse(bytes.toString()) as EchoReply
  for (let i = 0; i < n; i++) {
    await new Promise<void>((done) => {
      client.makeUnaryRequest(
        '/test.Echo/Unary',
        serialize,
        deserialize,
        { text: `call-${i}` },
        new Metadata(),
        { deadline: Date.now() + 5_000 },
        (err, reply) => {
          if (err) tally.errors.push(`${err.code} ${err.details}`)
          else if (reply) count(tally.servers, reply.server)
          done()
        },
      )
    })
  }
  client.close()
  return tally
}

/** Steady load: `concurrency` loops of requests, one after another, until stopped. */
class Load {
  readonly #tally: LoadTally = { total: 0, ok: 0, pods: {}, failures: [] }
  #running = true
  readonly #loops: Promise<void>[]

  constructor(url: string, concurrency: number, headers?: Record<string, string>) {
    this.#loops = Array.from({ length: concurrency }, () => this.#loop(url, headers))
  }

  async #loop(url: string, headers?: Record<string, string>): Promise<void> {
    while (this.#running) {
      const tally = this.#tally as {
        total: number
        ok: number
        pods: Record<string, number>
        failures: string[]
      }
      tally.total++
      try {
        const { status, body } = await get(url, headers)
        const reply = parseReply(body)
        if (status === 200 && reply !== undefined) {
          tally.ok++
          count(tally.pods, reply.pod)
        } else tally.failures.push(`${new Date().toISOString()} ${status} ${body.slice(0, 120)}`)
      } catch (err) {
        tally.failures.push(`${new Date().toISOString()} ${(err as Error).message}`)
      }
      await new Promise((r) => setTimeout(r, 5))
    }
  }

  async stop(): Promise<LoadTally> {
    this.#running = false
    await Promise.all(this.#loops)
    return this.#tally
  }
}

let load: Load | undefined

async function answer(command: ClientCommand): Promise<unknown> {
  switch (command.op) {
    case 'http':
      return httpTally(command.url, command.count, command.headers, command.resolveWithDns)
    case 'tcp':
      return tcpExchange(command.host, command.port, command.text)
    case 'grpc':
      return grpcTally(command.target, command.count)
    case 'resolve':
      return resolver.resolve4(command.name).then(
        (addresses): ResolveOutcome => ({ addresses }),
        (err: Error): ResolveOutcome => ({ addresses: [], error: err.message }),
      )
    case 'loadStart':
      load = new Load(command.url, command.concurrency, command.headers)
      return {}
    case 'loadStop': {
      const result = (await load?.stop()) ?? { total: 0, ok: 0, pods: {}, failures: ['no load was running'] }
      load = undefined
      return result
    }
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as ClientCommand
  void answer(command).then(
    (result) => process.stdout.write(`${JSON.stringify({ id: command.id, result })}\n`),
    (err: Error) => process.stdout.write(`${JSON.stringify({ id: command.id, error: err.message })}\n`),
  )
}
