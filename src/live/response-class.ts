// Whether a finished request counts as a success in the live view: Linkerd's default response classifier.

import type { RequestRecord } from '../telemetry/request-record.ts'

/**
 * Linkerd's default classifier (linkerd2-proxy `classify`): a response that was never sent (the client
 * left, the stream was reset) is a failure, as is a 5xx; a gRPC response succeeds only with grpc-status 0.
 * `outrigger stat`, `outrigger top` and the dashboard count success rates with it.
 */
export function isSuccess(record: RequestRecord): boolean {
  const status = record.responseStatus
  if (status === 0 || status >= 500) return false
  const grpcStatus = record.grpcStatus
  return grpcStatus === undefined || grpcStatus === '0'
}
