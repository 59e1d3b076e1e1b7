// Child process: closed-loop gRPC unary load with @grpc/grpc-js (N calls outstanding, 1 KiB each way) for a fixed time.
// Usage: node bench/workloads/grpc-load-child.ts <port> <authority> <concurrency> <seconds>; prints one JSON line.

import { Client, credentials } from '@grpc/grpc-js'
import { unaryMethod } from '../systems/grpc-echo.ts'

export interface GrpcLoadResult {
  readonly calls: number
  readonly errors: number
  readonly seconds: number
  readonly p50ms: number
  readonly p99ms: number
}

const [port, authority, concurrencyText, secondsText] = process.argv.slice(2)
const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
  'grpc.default_authority': authority,
})
const request = Buffer.alloc(1024, 'y')
const latencies: number[] = []
let errors = 0
const deadline = performance.now() + Number(secondsText) * 1000

function call(): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now()
    client.makeUnaryRequest(
      unaryMethod.path,
      unaryMethod.requestSerialize,
      unaryMethod.responseDeserialize,
      request,
      (err) => {
        if (err === null) latencies.push(performance.now() - started)
        else errors++
        resolve()
      },
    )
  })
}

async function worker(): Promise<void> {
  while (performance.now() < deadline) await call()
}

const started = performance.now()
await Promise.all(Array.from({ length: Number(concurrencyText) }, worker))
const seconds = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
const at = (q: number): number =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
const result: GrpcLoadResult = { calls: latencies.length, errors, seconds, p50ms: at(0.5), p99ms: at(0.99) }
process.stdout.write(`${JSON.stringify(result)}\n`)
client.close()
