// The gRPC service the bench loads: one unary method, bytes in and bytes out, with no codegen or protobuf.

import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js'

const identity = (bytes: Buffer): Buffer => bytes

export const unaryMethod: MethodDefinition<Buffer, Buffer> = {
  path: '/bench.Echo/Unary',
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
}

export const echoService: ServiceDefinition = { Unary: unaryMethod }
