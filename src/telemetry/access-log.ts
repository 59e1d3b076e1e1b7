// The access log: an observer writing Istio's default entry (TEXT or JSON) for each finished request and TCP connection, as its telemetry says.

import { AccessLogFiles } from './access-log-files.ts'
import { accessLogFilterAccepts, accessLogFilterAcceptsTcp } from './access-log-filter.ts'
import { type AccessLogEntry, jsonLine, requestEntry, tcpEntry, textLine } from './access-log-format.ts'
import type { RequestRecord } from './request-record.ts'
import type { TcpRecord } from './tcp-record.ts'
import type { AccessLogPolicy } from './telemetry-policy.ts'
import type { TrafficObserver } from './traffic-observer.ts'

/**
 * Reads each record's own telemetry (the model it started on): a request or connection whose direction
 * has no access log costs one property read. Lines go to `policy.path` through the runtime's
 * AccessLogFiles, one writer per path whichever listener or direction writes to it.
 */
export class AccessLog implements TrafficObserver {
  readonly name = 'access-log'
  readonly files: AccessLogFiles

  constructor(files = new AccessLogFiles()) {
    this.files = files
  }

  requestEnded(record: RequestRecord): void {
    const policy = record.telemetry.accessLog
    if (policy === undefined) return
    if (policy.filter !== undefined && !accessLogFilterAccepts(policy.filter, record)) return
    this.#write(policy, requestEntry(record))
  }

  tcpEnded(record: TcpRecord): void {
    const policy = record.telemetry.accessLog
    if (policy === undefined) return
    if (policy.filter !== undefined && !accessLogFilterAcceptsTcp(policy.filter, record)) return
    this.#write(policy, tcpEntry(record))
  }

  #write(policy: AccessLogPolicy, entry: AccessLogEntry): void {
    this.files.write(policy.path, policy.encoding === 'JSON' ? jsonLine(entry) : textLine(entry))
  }
}
