# The Outrigger sidecar image: Node 24 running src/main.ts directly (type stripping), as uid 1337 like istio-proxy.
FROM node:24-bookworm-slim
WORKDIR /opt/outrigger
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts
COPY src ./src
COPY bin ./bin
COPY config ./config
RUN useradd --uid 1337 --no-create-home --shell /usr/sbin/nologin istio-proxy
USER 1337
# admin, outbound capture, inbound capture, readiness, prometheus
EXPOSE 15000 15001 15006 15021 15090
ENTRYPOINT ["node", "src/main.ts"]
CMD ["run", "--config", "config/default.yaml"]
