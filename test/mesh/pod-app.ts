// An ordinary app for a namespace pod: HTTP, TCP echo and gRPC on 0.0.0.0, knowing nothing of the proxy beside it.

import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { type handleUnaryCall, Server, ServerCredentials } from '@grpc/grpc-js'
import { type EchoReply, type EchoRequest, echoService } from '../harness/grpc.ts'
import { type AppReply, appPorts } from './app-contract.ts'

const [pod = 'app', version = 'v0'] = process.argv.slice(2)

const http = createHttpServer((req, res) => {
  const reply: AppReply = {
    pod,
    version,
    path: req.url ?? '/',
    remote: req.socket.remoteAddress,
    xfcc: (req.headers['x-forwarded-client-cert'] as string | undefined) ?? null,
  }
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(reply))
})

const tcp = createTcpServer((socket) => {
  socket.on('data', (chunk) => socket.write(`${pod}:${chunk.toString()}`))
  socket.on('end', () => socket.end())
  socket.on('error', () => socket.destroy())
})

const unary: handleUnaryCall<EchoRequest, EchoReply> = (call, callback) =>
  callback(null, { server: pod, text: call.request.text ?? '' })
const grpc = new Server()
grpc.addService(echoService, { Unary: unary })

await Promise.all([
  new Promise<void>((done) => http.listen(appPorts.http, '0.0.0.0', done)),
  new Promise<void>((done) => tcp.listen(appPorts.tcp, '0.0.0.0', done)),
  new Promise<void>((done, fail) =>
    grpc.bindAsync(`0.0.0.0:${appPorts.grpc}`, ServerCredentials.createInsecure(), (err) =>
      err ? fail(err) : done(),
    ),
  ),
])
process.stdout.write('listening\n')

// A well-behaved Kubernetes app: on SIGTERM it stops accepting, finishes what it serves, and exits.
process.once('SIGTERM', () => {
  http.close()
  http.closeIdleConnections()
  tcp.close()
  grpc.tryShutdown(() => process.exit(0))
  setTimeout(() => process.exit(0), 2_000).unref()
})
