#!/usr/bin/env bash
# Scans the TLS settings of the mTLS ports with Debian's testssl.sh and writes the report to docs/testssl/; exits 1 on a HIGH or CRITICAL finding.
# bookworm's testssl.sh cannot present a client certificate, so it scans bench/support/tls-scan-target.ts:
# the mTLS ports' secure context (src/tls/mtls-terminator.ts contextOptions), ALPN and handshake timeout,
# without requiring a client certificate. The STRICT port's refusal of clients without one is checked
# with openssl s_client in test/tls-bad-input.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-tools.sh
out=docs/testssl
mkdir -p "$out"
work=$(mktemp -d)
port=${PORT:-18443}
cleanup() { [ -n "${target:-}" ] && kill -- "-$target" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

npx node src/main.ts ca init --out "$work/ca" >/dev/null
npx node src/main.ts ca issue --ca "$work/ca" --spiffe spiffe://cluster.local/ns/default/sa/scan --out "$work/id" >/dev/null
# Its own process group, so that the node process npx starts is stopped with it.
setsid npx node bench/support/tls-scan-target.ts "$work/id" "$port" &
target=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done

rm -f "$out/testssl.json" "$out/testssl.txt"
# -e: every cipher each protocol accepts; the rest is testssl's default run (protocols, server defaults, vulnerabilities).
testssl --quiet --color 0 --warnings batch --openssl-timeout 5 --ip one \
  --jsonfile "$out/testssl.json" --logfile "$out/testssl.txt" -e -p -S -P -U "127.0.0.1:$port" >/dev/null || true
# cert_* findings judge the certificate, not the TLS settings: a mesh workload certificate chains to a
# private root, names a SPIFFE URI rather than the host, lives 24 h and has no CRL/OCSP URI, by design
# (Istio's are the same). They are listed apart and do not fail the scan.
node -e '
  const findings = require(process.argv[1]);
  const isCert = (f) => f.id.startsWith("cert_") || f.id === "DNS_CAArecord";
  const severe = (f) => f.severity === "HIGH" || f.severity === "CRITICAL";
  const counts = {};
  for (const f of findings.filter((f) => !isCert(f))) counts[f.severity] = (counts[f.severity] || 0) + 1;
  console.log("TLS settings findings by severity:", JSON.stringify(counts));
  for (const f of findings.filter((f) => !isCert(f) && ["LOW", "MEDIUM", "HIGH", "CRITICAL"].includes(f.severity)))
    console.log(`  ${f.severity} ${f.id}: ${f.finding}`);
  console.log("certificate findings (expected for a mesh workload certificate):");
  for (const f of findings.filter((f) => isCert(f) && severe(f))) console.log(`  ${f.severity} ${f.id}: ${f.finding}`);
  process.exit(findings.some((f) => !isCert(f) && severe(f)) ? 1 : 0);
' "$PWD/$out/testssl.json" | tee "$out/summary.txt"
exit "${PIPESTATUS[0]}"
