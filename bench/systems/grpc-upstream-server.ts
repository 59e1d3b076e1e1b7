// Child process: the gRPC upstream of the grpc case (@grpc/grpc-js), answering each unary call with 1 KiB; prints its port.

import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js'
import { echoService } from './grpc-echo.ts'

const reply = Buffer.alloc(1024, 'x')
const server = new Server()
server.addService(echoService, {
  Unary: (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, reply),
})
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err !== null) throw err
  process.stdout.write(`${port}\n`)
})
