# Tally: one image for `tally serve` (a node) and `tally controller`.
#
#   docker build --network host -t tally .      (npm ci and apt need the network)
#   docker run --init -e TALLY_ID=a -v tally-a:/data -p 127.0.0.1:7400:7400 tally serve
#
# Configuration is by the documented TALLY_* environment variables (README, "Containers").
# Data lives under the /data volume; the process runs as user tally (uid 10001) under tini.

# ---- build: dev dependencies, TypeScript → dist/ ----
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.cache

# ---- runtime: production dependencies only ----
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 tally \
 && useradd --uid 10001 --gid tally --no-create-home --home-dir /data --shell /usr/sbin/nologin tally \
 && mkdir -p /data \
 && chown tally:tally /data
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
ENV NODE_ENV=production \
    LOG_FORMAT=json \
    TALLY_DATA_DIR=/data/node \
    TALLY_CONTROLLER_DATA_DIR=/data/controller \
    TALLY_LISTEN=0.0.0.0:7400 \
    TALLY_METRICS_LISTEN=0.0.0.0:9400 \
    TALLY_CONTROLLER_LISTEN=0.0.0.0:7402 \
    TALLY_CONTROLLER_METRICS_LISTEN=0.0.0.0:9402 \
    TALLY_DRAIN_DELAY_MS=1000
VOLUME ["/data"]
EXPOSE 7400 9400 7402 9402
USER tally
# Liveness of the process (a standby is healthy too); readiness for clients is the
# tally.v1.Counter service or GET /readyz on the metrics port.
HEALTHCHECK --interval=5s --timeout=4s --start-period=60s --retries=3 \
  CMD ["node", "/app/dist/cli/healthcheck.js"]
# tini is PID 1: it forwards SIGTERM/SIGINT to node and reaps what node leaves behind.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/main.js"]
CMD ["serve"]
