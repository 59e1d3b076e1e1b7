# The Outrigger sidecar image: Node 24 running the compiled proxy as uid 1337, like istio-proxy.
FROM node:24-bookworm-slim AS build
WORKDIR /opt/outrigger
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim
WORKDIR /opt/outrigger
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts
COPY --from=build /opt/outrigger/dist ./dist
COPY bin ./bin
COPY config ./config
RUN useradd --uid 1337 --no-create-home --shell /usr/sbin/nologin istio-proxy
USER 1337
# The health port (readiness, app probes) and Istio's stats port (Prometheus, /stats/prometheus) are bound
# on every address by the default bootstrap; admin listens on 127.0.0.1 only, the traffic ports are
# whatever the Sidecar resource opens (config/istio/), and capture (15001/15006) is not built yet.
EXPOSE 15021 15090
# V8 young generation capped at 8 MiB semi-spaces: less RSS and shorter scavenge pauses (bench/results/semi-space-2026-11-24.md)
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/main.js"]
CMD ["run", "--config", "config/default.yaml"]
