# The Outrigger sidecar image: Node 24 running the compiled proxy as uid 1337, like istio-proxy, on a distroless-like root.
# Built and run in CI by test/container-image.test.ts (podman, scripts/image/); docs/sidecar.md "The container image".

# TypeScript → dist/ (devDependencies live only here; --ignore-scripts keeps the `node` devDependency's binary out,
# and --omit=optional the platform binaries tsc does not need: biome's, rolldown's, koffi's).
FROM node:24-bookworm-slim AS build
WORKDIR /opt/outrigger
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --omit=optional
COPY src ./src
# Source maps stay out of the image: the ENTRYPOINT does not --enable-source-maps, so nothing reads them.
RUN npm run build && find dist -name '*.map' -delete

# Production dependencies only, without what Node never loads at run time (scripts/image/prune-node-modules.ts):
# type declarations, source maps, TypeScript and C/C++ sources, markdown, packages' tests/examples/docs, bundler-
# and browser-only builds (OpenTelemetry's esm/esnext, yaml's browser/, the dist/ bundles of node-forge, pako and
# protobufjs), koffi's build tool and its musl build (the runtime is glibc). npm installs only this platform's
# koffi binary (@koromix/koffi-<os>-<arch>, by its os/cpu fields), so the stage works on arm64 as on x86_64.
FROM node:24-bookworm-slim AS deps
WORKDIR /opt/outrigger
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts
COPY scripts/image/prune-node-modules.ts ./scripts/image/
RUN node scripts/image/prune-node-modules.ts node_modules

# The runtime's root file system: node (stripped), iptables (nft) and iproute2 for the capture init container,
# the libraries they load, /etc/passwd with istio-proxy. No shell, no apt, no npm (scripts/image/runtime-rootfs.sh).
FROM node:24-bookworm-slim AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 binutils \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/image/runtime-rootfs.sh /usr/local/bin/
RUN bash /usr/local/bin/runtime-rootfs.sh /rootfs

FROM scratch
COPY --from=rootfs /rootfs /
WORKDIR /opt/outrigger
COPY --from=deps /opt/outrigger/node_modules ./node_modules
COPY --from=build /opt/outrigger/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_ENV=production
USER 1337:1337
# Istio's sidecar ports: 15001 captured outbound, 15006 captured inbound, 15021 health (readiness, rewritten
# app probes), 15090 Prometheus stats, 15053/udp the DNS proxy. Admin (15000) listens on 127.0.0.1 only; in
# standalone mode (capture: none, config/default.yaml) the traffic ports come from the Sidecar resource.
EXPOSE 15001 15006 15021 15090 15053/udp
# Readiness as the kubelet asks it (exec form: the image has no shell).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:15021/healthz/ready').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# No node flags here: `run` applies the proxy's own V8 settings, as for `outrigger run` and npm start (docs/memory.md)
ENTRYPOINT ["node", "dist/main.js"]
CMD ["run", "--config", "config/default.yaml"]
