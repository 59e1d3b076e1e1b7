// The long-lived connections of the soak: WebSocket and raw TCP sessions that echo a message a second, close, reopen, and may drop only with their endpoint.

import { connect as connectTcp, type Socket } from 'node:net'
import { WebSocket } from 'ws'
import type { Endpoints } from './endpoints.ts'
import type { Driver } from './http-drivers.ts'
import { Pacer, type Tally } from './tally.ts'

const GREETING_TIMEOUT_MS = 5_000
const ECHO_TIMEOUT_MS = 5_000
/** A dropped session must be open again within this, or the run fails. */
export const RECONNECT_LIMIT_MS = 15_000
const RETRY_PAUSE_MS = 200

/** What the sessions of one protocol went through, besides the messages in the tally. */
export interface SessionCounts {
  opened: number
  closedCleanly: number
  /** Closed under a session whose endpoint was killed after it opened: allowed. */
  droppedWithEndpoint: number
  /** Closed while its endpoint ran: not allowed. */
  droppedUnexpectedly: number
  /** Connection attempts that failed while an endpoint was down or just back (allowed). */
  attemptsFailedDuringOutage: number
  /** Connection attempts that failed with every endpoint up (not allowed). */
  attemptsFailedOtherwise: number
  /** Longest time from a drop to the session being open again. */
  longestReconnectMs: number
  /** Drops not followed by an open session within RECONNECT_LIMIT_MS (not allowed). */
  reconnectsTooSlow: number
}

/** One open connection, as the session loop sees it. */
interface Connection {
  send(text: string): void
  close(): void
  destroy(): void
}

interface Opened {
  readonly connection: Connection
  readonly endpoint: string
}

/** How to open a connection of one protocol; resolves once the endpoint's greeting arrived. */
type Opener = (onMessage: (text: string) => void, onGone: () => void) => Promise<Opened>

class Session {
  readonly #id: number
  readonly #open: Opener
  readonly #tally: Tally
  readonly #counts: SessionCounts
  readonly #endpoints: Endpoints
  #connection: Connection | undefined
  #endpoint = ''
  #epoch = 0
  #seq = 0
  #outstanding: { text: string; at: number; timer: NodeJS.Timeout } | undefined
  #lifetime: NodeJS.Timeout | undefined
  #stopped = false
  #closing = false

  constructor(id: number, open: Opener, tally: Tally, counts: SessionCounts, endpoints: Endpoints) {
    this.#id = id
    this.#open = open
    this.#tally = tally
    this.#counts = counts
    this.#endpoints = endpoints
  }

  get ready(): boolean {
    return this.#connection !== undefined && this.#outstanding === undefined && !this.#closing
  }

  /** Opens the session, retrying until it is open, the limit has passed, or the run stops. */
  async connect(droppedAt?: number): Promise<void> {
    for (;;) {
      if (this.#stopped) return
      // Taken before connecting: a greeting sent by an endpoint just before it was killed arrives after the kill.
      const epochs = this.#endpoints.epochs()
      try {
        const opened = await this.#open(
          (text) => this.#onMessage(text),
          () => this.#onGone(),
        )
        if (this.#stopped) {
          opened.connection.close()
          return
        }
        this.#connection = opened.connection
        this.#endpoint = opened.endpoint
        this.#epoch = epochs.get(opened.endpoint) ?? 0
        this.#closing = false
        this.#counts.opened++
        if (droppedAt !== undefined) {
          const ms = performance.now() - droppedAt
          this.#counts.longestReconnectMs = Math.max(this.#counts.longestReconnectMs, ms)
          if (ms > RECONNECT_LIMIT_MS) this.#counts.reconnectsTooSlow++
        }
        // Sessions live 5–20 s and then close cleanly, so connections keep opening and closing all run long.
        this.#lifetime = setTimeout(() => this.#closeCleanly(), 5_000 + Math.random() * 15_000)
        return
      } catch {
        if (this.#endpoints.disrupted()) this.#counts.attemptsFailedDuringOutage++
        else this.#counts.attemptsFailedOtherwise++
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS))
      }
    }
  }

  send(): void {
    const connection = this.#connection
    if (connection === undefined) return
    const text = `m ${this.#id} ${this.#seq++}`
    this.#tally.started()
    const timer = setTimeout(() => {
      this.#tally.fail('no echo within 5 s')
      this.#outstanding = undefined
      this.#connection = undefined
      clearTimeout(this.#lifetime)
      connection.destroy()
      void this.connect(performance.now())
    }, ECHO_TIMEOUT_MS)
    this.#outstanding = { text, at: performance.now(), timer }
    connection.send(text)
  }

  #onMessage(text: string): void {
    const outstanding = this.#outstanding
    if (outstanding === undefined) {
      this.#tally.fail('unexpected message')
      return
    }
    clearTimeout(outstanding.timer)
    this.#outstanding = undefined
    if (text === outstanding.text) this.#tally.succeeded(outstanding.at)
    else this.#tally.fail('wrong echo')
    if (this.#closing) this.#connection?.close()
  }

  #closeCleanly(): void {
    this.#closing = true
    // Waits for the message in flight, if any: its echo closes the connection.
    if (this.#outstanding === undefined) this.#connection?.close()
  }

  /** The connection ended: cleanly when this side asked for it, else a drop. */
  #onGone(): void {
    if (this.#connection === undefined) return
    this.#connection = undefined
    clearTimeout(this.#lifetime)
    const outstanding = this.#outstanding
    this.#outstanding = undefined
    if (outstanding !== undefined) clearTimeout(outstanding.timer)
    if (this.#stopped) return
    if (this.#closing && outstanding === undefined) {
      this.#counts.closedCleanly++
      void this.connect()
      return
    }
    if (this.#endpoints.killEpoch(this.#endpoint) > this.#epoch) {
      this.#counts.droppedWithEndpoint++
      if (outstanding !== undefined) this.#tally.dropped++
    } else {
      this.#counts.droppedUnexpectedly++
      if (outstanding !== undefined) this.#tally.fail('connection dropped with its endpoint up')
    }
    void this.connect(performance.now())
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#lifetime)
    if (this.#outstanding !== undefined) {
      clearTimeout(this.#outstanding.timer)
      // Sent before the stop and never answered: lost.
      this.#tally.fail('no echo before the end')
      this.#outstanding = undefined
    }
    const connection = this.#connection
    this.#connection = undefined
    connection?.close()
  }
}

/** `sessions` connections of one protocol, each sent one message a second on average. */
export class SessionDriver implements Driver {
  readonly counts: SessionCounts = {
    opened: 0,
    closedCleanly: 0,
    droppedWithEndpoint: 0,
    droppedUnexpectedly: 0,
    attemptsFailedDuringOutage: 0,
    attemptsFailedOtherwise: 0,
    longestReconnectMs: 0,
    reconnectsTooSlow: 0,
  }
  readonly #sessions: Session[] = []
  readonly #pacer: Pacer
  #next = 0

  constructor(sessions: number, open: Opener, tally: Tally, endpoints: Endpoints) {
    for (let i = 0; i < sessions; i++)
      this.#sessions.push(new Session(i, open, tally, this.counts, endpoints))
    this.#pacer = new Pacer(sessions, () => this.#send())
  }

  /** Opens every session before the paced messages start. */
  async open(): Promise<void> {
    await Promise.all(this.#sessions.map((s) => s.connect()))
  }

  start(): void {
    this.#pacer.start()
  }

  /** The next session in turn that is open and idle sends; one that is reconnecting or still waiting is passed over. */
  #send(): void {
    for (let tried = 0; tried < this.#sessions.length; tried++) {
      const session = this.#sessions[this.#next]
      this.#next = (this.#next + 1) % this.#sessions.length
      if (session.ready) {
        session.send()
        return
      }
    }
  }

  async stop(): Promise<void> {
    this.#pacer.stop()
    // Lets the last echoes arrive before closing.
    await new Promise((r) => setTimeout(r, 1_000))
    for (const session of this.#sessions) session.stop()
  }
}

/** WebSocket through the HTTP egress listener (Host soak-ws); the endpoint's first message names it. */
export function webSocketOpener(port: number): Opener {
  return (onMessage, onGone) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, {
        headers: { host: 'soak-ws' },
        handshakeTimeout: GREETING_TIMEOUT_MS,
      })
      let greeted = false
      const timer = setTimeout(() => ws.terminate(), GREETING_TIMEOUT_MS)
      ws.on('unexpected-response', (_req, res) => {
        res.resume()
        ws.terminate()
      })
      ws.on('error', () => {})
      ws.on('message', (data) => {
        const text = data.toString()
        if (greeted) return onMessage(text)
        greeted = true
        clearTimeout(timer)
        resolve({
          endpoint: text.replace(/^endpoint /, ''),
          connection: { send: (t) => ws.send(t), close: () => ws.close(), destroy: () => ws.terminate() },
        })
      })
      ws.on('close', () => {
        clearTimeout(timer)
        if (greeted) onGone()
        else reject(new Error('closed before the greeting'))
      })
    })
}

/** Raw TCP through the TCP egress listener; the endpoint's first line names it, then every line is echoed. */
export function tcpOpener(port: number): Opener {
  return (onMessage, onGone) =>
    new Promise((resolve, reject) => {
      const socket: Socket = connectTcp(port, '127.0.0.1')
      let greeted = false
      let buffered = ''
      const timer = setTimeout(() => socket.destroy(), GREETING_TIMEOUT_MS)
      socket.setEncoding('utf8')
      socket.on('error', () => {})
      socket.on('data', (chunk: string) => {
        buffered += chunk
        for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl)
          buffered = buffered.slice(nl + 1)
          if (greeted) {
            onMessage(line)
            continue
          }
          greeted = true
          clearTimeout(timer)
          resolve({
            endpoint: line.replace(/^endpoint /, ''),
            connection: {
              send: (t) => socket.write(`${t}\n`),
              close: () => socket.end(),
              destroy: () => socket.destroy(),
            },
          })
        }
      })
      socket.on('close', () => {
        clearTimeout(timer)
        if (greeted) onGone()
        else reject(new Error('closed before the greeting'))
      })
    })
}
