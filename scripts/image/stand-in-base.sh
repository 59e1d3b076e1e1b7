#!/usr/bin/env bash
# Assembles a stand-in for the node:24-bookworm-slim image (no registry of images is reachable here) and prints its tarball's path.
#
# Debian bookworm (mmdebstrap, minbase, docs and man pages left out as debian:bookworm-slim does) with Node from
# the npm `node` package's platform binary and npm from the registry, laid out as the official node image lays
# them out (/usr/local/bin/node, /usr/local/lib/node_modules/npm, user `node` 1000). It also carries this
# machine's CA bundle (the file NODE_EXTRA_CA_CERTS names) so `npm ci` inside a build reaches the registry.
# The tarball is cached under $OUTRIGGER_IMAGE_CACHE (default ~/.cache/outrigger/image), keyed by a hash of
# this script, the Node version and the architecture: a second run only prints the path.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# The Node version the project itself runs on (the `node` devDependency), so image and tests agree.
node_version=$(sed -n '/"node_modules\/node": {/,/}/s/.*"version": "\([^"]*\)".*/\1/p' "$repo/package-lock.json" | head -n1)
npm_version=11.19.1
suite=bookworm
mirror=http://deb.debian.org/debian
ca_bundle=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}

case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64) node_arch=arm64 ;;
  *) echo "stand-in-base: no npm node binary for $(uname -m)" >&2; exit 1 ;;
esac

cache=${OUTRIGGER_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outrigger/image}
key=$( { cat "$0"; echo "$node_version $npm_version $node_arch"; cat "$ca_bundle"; } | sha256sum | cut -c1-16)
tarball="$cache/node-$node_version-$suite-slim-$node_arch-$key.tar"
if [ -s "$tarball" ]; then
  echo "$tarball"
  exit 0
fi

for tool in mmdebstrap npm; do
  command -v "$tool" >/dev/null || { echo "stand-in-base: $tool is missing (scripts/install-test-tools.sh installs it)" >&2; exit 1; }
done
[ -s "$ca_bundle" ] || { echo "stand-in-base: no CA bundle at $ca_bundle" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Node and npm from the npm registry, unpacked where the official image puts them.
(cd "$work" && npm pack --silent "node-linux-$node_arch@$node_version" "npm@$npm_version" >/dev/null)
overlay="$work/overlay"
mkdir -p "$overlay/usr/local/bin" "$overlay/usr/local/lib/node_modules/npm" "$overlay/etc/ssl/certs"
tar -xzf "$work/node-linux-$node_arch-$node_version.tgz" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$overlay/usr/local/bin/node"
tar -xzf "$work/npm-$npm_version.tgz" -C "$overlay/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$overlay/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$overlay/usr/local/bin/npx"
install -m 0644 "$ca_bundle" "$overlay/etc/ssl/certs/ca-certificates.crt"

# debian:bookworm-slim's dpkg excludes (docs, man pages, locales), then the overlay and the image's `node` user.
# shellcheck disable=SC2016 # "$1" in a hook is the tree mmdebstrap passes it, expanded by mmdebstrap's shell
mmdebstrap --quiet --variant=minbase --format=tar \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook="sync-in '$overlay' /" \
  --customize-hook='chroot "$1" groupadd --gid 1000 node' \
  --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  "$suite" "$work/base.tar" "$mirror"

mv "$work/base.tar" "$tarball"
# Older tarballs of this cache (another script version or Node version) are dead weight.
find "$cache" -maxdepth 1 -name 'node-*.tar' ! -name "$(basename "$tarball")" -delete
echo "$tarball"
