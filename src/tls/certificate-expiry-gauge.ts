// Envoy's gauge server.days_until_first_cert_expiring: the whole days left of the certificate that expires first, computed when scraped.

import { Gauge, type Registry } from '../telemetry/prom-metrics.ts'
import { envoyPrometheusName } from '../telemetry/stats-registry.ts'
import type { CertificateSet } from './certificate-details.ts'

/**
 * What Envoy reports with no certificate at all: ContextManagerImpl::daysUntilFirstCertExpires starts
 * from std::numeric_limits<uint32_t>::max() (source/common/tls/context_manager_impl.cc).
 */
export const NO_CERTIFICATE_DAYS = 2 ** 32 - 1

/**
 * The least days_until_expiration over every certificate of `sets` (the workload certificate and its
 * root, each Sidecar ingress TLS certificate and its client CA, as admin /certs lists them), as Envoy
 * computes it: per certificate the whole days to NotAfter (ASN1_TIME_diff's days, so floored), an
 * expired certificate makes the whole value 0 (Utility::getDaysUntilExpiration returns nullopt, and
 * InstanceBase::updateServerStats sets `value_or(0)`), and no certificate gives NO_CERTIFICATE_DAYS.
 */
export function daysUntilFirstCertExpiring(sets: readonly CertificateSet[]): number {
  let days = NO_CERTIFICATE_DAYS
  for (const set of sets) {
    for (const certificate of [...set.ca_cert, ...set.cert_chain]) {
      days = Math.min(days, Number(certificate.days_until_expiration))
    }
  }
  return days
}

/**
 * Registers `envoy_server_days_until_first_cert_expiring` in `registry`; `certificates` is read at each
 * scrape (nothing is counted on the data path).
 */
export function registerCertificateExpiryGauge(
  registry: Registry,
  certificates: () => readonly CertificateSet[],
): Gauge {
  return new Gauge({
    name: envoyPrometheusName('server.days_until_first_cert_expiring'),
    help: 'Number of days until the next certificate being managed will expire',
    registers: [registry],
    // Every worker thread reads the same certificates: merged across workers, the value is one worker's.
    aggregator: 'min',
    collect() {
      this.set(daysUntilFirstCertExpiring(certificates()))
    },
  })
}
