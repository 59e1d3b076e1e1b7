// Child process: the HTTP/2 (h2c) upstream of the h2 case, answering every stream with 1 KiB; prints its port.

import { createServer } from 'node:http2'
import type { AddressInfo } from 'node:net'

const body = Buffer.alloc(1024, 'x')
const server = createServer({ settings: { maxConcurrentStreams: 1000 } })
server.on('stream', (stream) => {
  stream.on('error', () => {})
  stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': body.length })
  stream.end(body)
})
server.on('sessionError', () => {})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
})
