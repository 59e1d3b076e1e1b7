// Warns in the log when a certificate nears its expiry: at load, when it crosses the threshold, then periodically until replaced.

import { log } from '../telemetry/log.ts'

/**
 * A certificate is near expiry when less than this fraction of its lifetime is left. Every rotator the
 * proxy runs beside renews earlier: istio-agent and SPIRE at 1/2 left, cert-manager at 1/3 left
 * (renewBefore's default), built-in issuing at 1/2. So a certificate under 1/5 means its rotation is not
 * working, with time left to fix it: about 4.8 h of a 24 h Istio certificate, 18 days of a 90-day one.
 */
export const NEAR_EXPIRY_FRACTION = 0.2

/** The longest delay setTimeout takes (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

export interface CertificateValidity {
  readonly notBefore: Date
  readonly notAfter: Date
}

export type ExpiryState = 'valid' | 'near-expiry' | 'expired'

/** Where `certificate` stands at `now`, by NEAR_EXPIRY_FRACTION. */
export function expiryState(certificate: CertificateValidity, now = Date.now()): ExpiryState {
  const notAfter = certificate.notAfter.getTime()
  if (now >= notAfter) return 'expired'
  const lifetime = notAfter - certificate.notBefore.getTime()
  return notAfter - now < lifetime * NEAR_EXPIRY_FRACTION ? 'near-expiry' : 'valid'
}

function describeLeft(ms: number): string {
  if (ms >= 48 * 3600_000) return `${Math.floor(ms / (24 * 3600_000))} days`
  if (ms >= 2 * 3600_000) return `${Math.floor(ms / 3600_000)} h`
  if (ms >= 120_000) return `${Math.floor(ms / 60_000)} min`
  return `${Math.max(0, Math.round(ms / 1000))} s`
}

/**
 * Watches one certificate at a time: logs a warning when it is near expiry (at watch() and again every
 * 1/20 of its lifetime, between 1 s and 1 h), and an error once it has expired. watch() with the next
 * certificate replaces the previous one.
 */
export class ExpiryMonitor {
  readonly #what: string
  #timer: NodeJS.Timeout | undefined

  /** `what` names the certificate in the log, e.g. `workload certificate spiffe://…`. */
  constructor(what: string) {
    this.#what = what
  }

  watch(certificate: CertificateValidity, what = this.#what): void {
    this.close()
    this.#check(certificate, what)
  }

  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #check(certificate: CertificateValidity, what: string): void {
    const now = Date.now()
    const notAfter = certificate.notAfter.getTime()
    const lifetime = notAfter - certificate.notBefore.getTime()
    const state = expiryState(certificate, now)
    let next: number
    if (state === 'expired') {
      log.error(
        `${what} expired at ${certificate.notAfter.toISOString()}: peers refuse it until it is replaced`,
      )
      return
    }
    if (state === 'near-expiry') {
      log.warning(
        `${what} expires in ${describeLeft(notAfter - now)} (at ${certificate.notAfter.toISOString()}): less than 1/5 of its lifetime is left, is its rotation working?`,
      )
      next = Math.min(notAfter - now, Math.min(3600_000, Math.max(1000, lifetime / 20)))
    } else {
      next = notAfter - lifetime * NEAR_EXPIRY_FRACTION - now
    }
    this.#timer = setTimeout(() => this.#check(certificate, what), Math.min(MAX_TIMER_MS, Math.max(1, next)))
    this.#timer.unref()
  }
}
