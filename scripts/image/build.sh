#!/usr/bin/env bash
# Builds the Dockerfile with podman (no Docker engine here) on the stand-in node:24-bookworm-slim base.
#
# Usage: scripts/image/build.sh <tag> [podman global option…]
# e.g.   scripts/image/build.sh localhost/outrigger:dev --root /tmp/s/root --runroot /tmp/s/run
# The base comes from scripts/image/stand-in-base.sh (cached) and is tagged as the Dockerfile's FROM name;
# the Dockerfile is built as it is, `--isolation chroot` (no runtime inside a container needed), in Docker's
# image format so that HEALTHCHECK is kept (the OCI format has no field for it).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 <tag> [podman global option…]" >&2; exit 2; }
tag=$1
shift
podman=(podman "$@")
repo=$(cd "$(dirname "$0")/../.." && pwd)

base_tarball=$(bash "$repo/scripts/image/stand-in-base.sh")
base_name=docker.io/library/$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$repo/Dockerfile" | head -n1)
node_version=$(basename "$base_tarball" | cut -d- -f2)

# The base the official image would give: its PATH, NODE_VERSION and CMD, plus the CA bundle for npm.
"${podman[@]}" import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  "$base_tarball" "$base_name" >/dev/null

"${podman[@]}" build --quiet --isolation chroot --pull=never --format docker --jobs 3 \
  --tag "$tag" --file "$repo/Dockerfile" "$repo"
