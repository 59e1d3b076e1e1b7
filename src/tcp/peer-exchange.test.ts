// The TCP peer exchange on real loopback sockets: frames both ways, app bytes kept, and istio-proxy's fallbacks for a peer without the exchange.

import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { localPeer, PeerMetadataExchange } from '../telemetry/peer-metadata-exchange.ts'
import type { WorkloadMetadata } from '../telemetry/workload-metadata.ts'
import { PeerExchange } from './peer-exchange.ts'

function exchangeOf(workload: string): PeerMetadataExchange {
  const node = {
    workload,
    namespace: 'ns',
    serviceAccount: 'sa',
    cluster: 'c',
    trustDomain: 'td',
    labels: {},
  }
  return new PeerMetadataExchange(localPeer(node, 'host', '127.0.0.1'))
}

interface Result {
  readonly peer: WorkloadMetadata | undefined
  readonly leftover: string
}

function run(socket: Socket, exchange: PeerMetadataExchange): Promise<Result> {
  return new Promise((resolve) => {
    new PeerExchange(socket, exchange, (peer, leftover) =>
      resolve({ peer, leftover: leftover?.toString('latin1') ?? '' }),
    ).start()
  })
}

/** A connected pair of loopback sockets. */
async function socketPair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const listener: Server = createServer({ allowHalfOpen: true })
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const address = listener.address() as { port: number }
  const accepted = once(listener, 'connection')
  const client = connect({ port: address.port, host: '127.0.0.1', allowHalfOpen: true })
  const [server] = (await accepted) as [Socket]
  await once(client, 'connect')
  return {
    server,
    client,
    close: () => {
      client.destroy()
      server.destroy()
      listener.close()
    },
  }
}

let cleanup: (() => void) | undefined
afterEach(() => cleanup?.())

describe('PeerExchange', () => {
  it('gives each side the other workload, and keeps the app bytes that follow the frame', async () => {
    const pair = await socketPair()
    cleanup = pair.close
    const [server, client] = await Promise.all([
      run(pair.server, exchangeOf('server-wl')),
      (async () => {
        const result = run(pair.client, exchangeOf('client-wl'))
        pair.client.write('hello')
        return result
      })(),
    ])
    expect(server.peer?.workloadName).toBe('client-wl')
    expect(client.peer?.workloadName).toBe('server-wl')
    // The client's app bytes went out after its frame: the server reads them past the frame (or next, from the socket).
    const rest =
      server.leftover === '' ? String((await once(pair.server.resume(), 'data'))[0]) : server.leftover
    expect(rest).toBe('hello')
  })

  it('reads a frame that arrives a few bytes at a time', async () => {
    const pair = await socketPair()
    cleanup = pair.close
    const result = run(pair.server, exchangeOf('server-wl'))
    const bytes = exchangeOf('slow-peer').frame
    for (let i = 0; i < bytes.length; i += 7) {
      pair.client.write(bytes.subarray(i, i + 7))
      await new Promise((r) => setImmediate(r))
    }
    const { peer, leftover } = await result
    expect(peer?.workloadName).toBe('slow-peer')
    expect(leftover).toBe('')
  })

  it("treats a peer without the exchange (no magic) as app data, as istio-proxy's filter goes Invalid", async () => {
    const pair = await socketPair()
    cleanup = pair.close
    const result = run(pair.server, exchangeOf('server-wl'))
    pair.client.write('GET / HTTP/1.1\r\n\r\n')
    const { peer, leftover } = await result
    expect(peer).toBeUndefined()
    expect(leftover).toBe('GET / HTTP/1.1\r\n\r\n')
  })

  it('gives up when the peer closes before a whole frame: what it sent goes on', async () => {
    const pair = await socketPair()
    cleanup = pair.close
    const result = run(pair.server, exchangeOf('server-wl'))
    pair.client.end(exchangeOf('p').frame.subarray(0, 12))
    const { peer, leftover } = await result
    expect(peer).toBeUndefined()
    expect(Buffer.from(leftover, 'latin1')).toEqual(exchangeOf('p').frame.subarray(0, 12))
  })

  it('does not wait for an oversized frame: its header is dropped and the rest passed on', async () => {
    const pair = await socketPair()
    cleanup = pair.close
    const result = run(pair.server, exchangeOf('server-wl'))
    const header = Buffer.alloc(8)
    header.writeUInt32BE(0x3d230467, 0)
    header.writeUInt32BE(1 << 30, 4)
    pair.client.write(Buffer.concat([header, Buffer.from('rest')]))
    const { peer, leftover } = await result
    expect(peer).toBeUndefined()
    expect(leftover).toBe('rest')
  })

  it('drops a frame whose payload does not decode, and keeps what follows it', async () => {
    const pair = await socketPair()
    cleanup = pair.close
    const result = run(pair.server, exchangeOf('server-wl'))
    const header = Buffer.alloc(8)
    header.writeUInt32BE(0x3d230467, 0)
    header.writeUInt32BE(3, 4)
    pair.client.write(Buffer.concat([header, Buffer.from([0xff, 0xff, 0xff]), Buffer.from('next')]))
    const { peer, leftover } = await result
    expect(peer).toBeUndefined()
    expect(leftover).toBe('next')
  })
})
