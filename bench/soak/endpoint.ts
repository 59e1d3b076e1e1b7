// Child process: one endpoint of every soak service (HTTP/1.1 + WebSocket, h2c, gRPC, TCP echo) on the ports it is given.
//
// `node bench/soak/endpoint.ts <name> <h1 port> <h2 port> <grpc port> <tcp port>`; prints `ready` once all four
// listen. The soak kills this process (SIGKILL) to fail the endpoint and starts it again on the same ports.

import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttp2Server } from 'node:http2'
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net'
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js'
import { WebSocketServer } from 'ws'
import { echoService } from '../systems/grpc-echo.ts'

const [name, h1Port, h2Port, grpcPort, tcpPort] = process.argv.slice(2)
const body = Buffer.alloc(512, 'x')

const http1 = createHttpServer((req, res) => {
  req.resume()
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-endpoint': name })
  res.end(body)
})
http1.keepAliveTimeout = 60_000
const sockets = new WebSocketServer({ noServer: true })
http1.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy())
  sockets.handleUpgrade(req, socket, head, (ws) => {
    ws.send(`endpoint ${name}`)
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : data.toString()))
    ws.on('error', () => ws.terminate())
  })
})

const http2 = createHttp2Server({ settings: { maxConcurrentStreams: 1000 } })
http2.on('stream', (stream) => {
  stream.on('error', () => {})
  stream.respond({
    ':status': 200,
    'content-type': 'text/plain',
    'content-length': body.length,
    'x-endpoint': name,
  })
  stream.end(body)
})
http2.on('sessionError', () => {})

const grpc = new Server()
grpc.addService(echoService, {
  Unary: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
    const metadata = new Metadata()
    metadata.set('x-endpoint', name)
    call.sendMetadata(metadata)
    callback(null, call.request)
  },
})

/** Raw TCP echo that says who it is first, so a client knows which endpoint its connection reached. */
const tcp: TcpServer = createTcpServer((socket) => {
  socket.on('error', () => socket.destroy())
  socket.write(`endpoint ${name}\n`)
  socket.pipe(socket)
})

function listen(server: { listen(port: number, host: string, done: () => void): unknown }, port: string) {
  return new Promise<void>((resolve) => server.listen(Number(port), '127.0.0.1', resolve))
}

await Promise.all([
  listen(http1, h1Port),
  listen(http2, h2Port),
  listen(tcp, tcpPort),
  new Promise<void>((resolve, reject) =>
    grpc.bindAsync(`127.0.0.1:${grpcPort}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  ),
])
process.stdout.write('ready\n')
