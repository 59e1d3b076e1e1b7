#!/usr/bin/env bash
# Installs the Debian packages the tests, scripts/testssl-scan.sh and scripts/image/ use; does nothing when they are all there.
set -euo pipefail

# command → Debian package
declare -A tools=(
  [openssl]=openssl          # test certificates (test/harness/tls-*.ts) and `openssl s_client` checks
  [testssl]=testssl.sh       # scripts/testssl-scan.sh
  [prometheus]=prometheus    # test/prometheus-scrape.test.ts scrapes a sidecar's stats port
  [ip]=iproute2              # network namespaces of the capture and mesh tests (test/harness/netns.ts)
  [iptables]=iptables        # outrigger capture install, inside those namespaces
  [setpriv]=util-linux       # runs a pod's proxy as uid 1337 inside its namespace
  [curl]=curl                # test/mesh-namespaces.test.ts: readiness and metrics scraped inside a pod
  [python3]=python3          # test/capture.test.ts: a transparent (IP_TRANSPARENT) listener for TPROXY capture
  [podman]=podman            # test/container-image.test.ts builds the Dockerfile (scripts/image/build.sh)
  [mmdebstrap]=mmdebstrap    # scripts/image/stand-in-base.sh assembles the stand-in node:24-bookworm-slim base
  [curl]=curl                # readiness and admin reads inside a pod (test/harness/pod-proxy.ts)
  [chromium]=chromium        # the admin dashboard's test drives headless Chromium (playwright-core)
  [tmux]=tmux                # `outrigger top` is driven in a tmux pane (send-keys, capture-pane)
  [nginx]=nginx              # test/footprint-bench.test.ts: the bench's static upstream (bench/systems/upstream.ts)
)

missing=()
for cmd in "${!tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${tools[$cmd]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  apt=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt=(sudo -n apt-get)
else
  echo "install-test-tools: missing ${missing[*]} and not root: install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent or stale on a fresh image: update once, only when the install fails.
"${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
  { "${apt[@]}" update >/dev/null && "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null; }
echo "install-test-tools: installed ${missing[*]}"
