// A tapped request's summary (live-api's TapEvent), copied from the record while the observer runs: built only for a request a tap matches.

import type { RequestRecord } from '../telemetry/request-record.ts'
import { formatResponseFlags } from '../telemetry/response-flags.ts'
import type { TapEvent } from './live-api.ts'

/** Copies what `outrigger tap` shows of `record` (the record is valid only during the observer's call). */
export function tapEvent(record: RequestRecord, worker: number): TapEvent {
  const peer = record.peer
  return {
    time: new Date(performance.timeOrigin + record.startTime).toISOString(),
    direction: record.direction,
    peer: peer === undefined ? '' : `spiffe://${peer.principal}`,
    method: record.method,
    authority: record.authority,
    path: record.url,
    protocol: record.protocol,
    status: record.responseStatus,
    responseFlags: formatResponseFlags(record.responseFlags),
    grpcStatus: record.grpcStatus,
    durationMs: Math.round((record.endTime - record.startTime) * 1000) / 1000,
    bytesReceived: record.requestBodyBytes,
    bytesSent: record.responseBodyBytes,
    upstreamHost: record.upstreamHostPort ?? '',
    cluster: record.clusterName,
    route: record.routeName,
    requestId: record.requestId || (record.header('x-request-id') ?? ''),
    worker,
  }
}
