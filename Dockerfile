# Warden: the server image (docs/packaging.md).
#
#   docker build -t warden .
#   docker run --rm -v warden-data:/var/lib/warden warden keys create --role admin   # prints the first key once
#   docker run -d -p 8080:8080 -v warden-data:/var/lib/warden warden               # warden serve on 0.0.0.0:8080
#
# Two stages: `build` installs every dependency from the lockfile, builds the dashboard and prunes the dev
# dependencies; the runtime stage copies only what `warden serve` reads into a slim image and runs as a non-root user.

ARG NODE_IMAGE=node:20-bookworm
ARG NODE_RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# package.json's `allowScripts` (which builds better-sqlite3 and keeps onnxruntime-node's install script, the one that
# downloads CUDA libraries, from running) is honoured by npm >= 11.16; Node 20 ships npm 10, which would run every
# install script. ONNXRUNTIME_NODE_INSTALL=skip makes that script exit at once whichever npm runs it: the CPU build
# ships in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false
RUN npm install -g npm@11.19.1
# The lockfile first, so the dependency layer is rebuilt only when it changes. `npm ci` runs the root's `prepare`
# (scripts/build-web.js), which builds the dashboard from web/: both come along.
COPY package.json package-lock.json tsconfig.json ./
COPY scripts/build-web.js scripts/build-web.js
COPY web/ web/
RUN npm ci
COPY bin/ bin/
COPY src/ src/
COPY data/ data/
# A no-op when `prepare` built it already; fails the build when the dashboard does not build.
RUN npm run build:web \
    && test -f web/dist/index.html \
    && npm prune --omit=dev \
    && npm cache clean --force

FROM ${NODE_RUNTIME_IMAGE} AS runtime
ENV NODE_ENV=production \
    WARDEN_HOST=0.0.0.0 \
    WARDEN_PORT=8080 \
    WARDEN_DATA_DIR=/var/lib/warden
# Numeric uid/gid, so Kubernetes' runAsNonRoot can check them; the code is root-owned and read-only to that user.
RUN groupadd --system --gid 10001 warden \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/warden --no-create-home --shell /usr/sbin/nologin warden \
    && mkdir -p /var/lib/warden \
    && chown 10001:10001 /var/lib/warden \
    && ln -s /app/bin/warden.js /usr/local/bin/warden
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json /src/tsconfig.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/bin/ bin/
COPY --from=build /src/src/ src/
COPY --from=build /src/data/ data/
COPY --from=build /src/web/dist/ web/dist/
USER 10001:10001
# The embedded store (SQLite databases, model files, slo.yaml, uploads in progress). With WARDEN_STORAGE_URL set all of
# that lives in PostgreSQL, SLO definitions included (an slo.yaml here only seeds an empty store): only uploads in
# progress are written here.
VOLUME ["/var/lib/warden"]
EXPOSE 8080
# Node's own fetch: the slim image has no curl. Fails until the server listens (it loads every deployed model first),
# while /v2/health/ready answers 503 (a deployed model not ready) and during the drain after SIGTERM.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WARDEN_PORT || 8080) + '/v2/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains: readiness answers 503 at once, requests are served for server.drainDelayMs (WARDEN_DRAIN_DELAY_MS,
# default 5 s), then the server closes and the prediction log is written. `docker stop` waits 10 s by default.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/warden.js"]
CMD ["serve"]
