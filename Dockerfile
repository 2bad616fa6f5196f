# syntax=docker/dockerfile:1
# Fairlane's one image: every process role, compiled (npm run build), run by plain node. The role is
# the command (docker-compose.yml runs one service per role):
#   docker build -t fairlane:0.2.0 .
#   docker run --rm fairlane:0.2.0 dist/workers/api.js --help
#   docker run -e REDIS_URL=redis://redis:6379 -e FAIRLANE_ADMIN_TOKEN=... -p 3000:3000 fairlane:0.2.0 dist/workers/api.js
# The default command, dist/workers/all.js, runs every role in one process; here it needs REDIS_URL
# (the image carries no redis-server to embed). Checked by test/integration/image.test.ts.

# Build: all dependencies (TypeScript), then dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY queues ./queues
COPY workers ./workers
COPY dashboard ./dashboard
# The CLI imports the client package's source (src/client/index.ts re-exports it); build.sh builds the package too.
COPY packages/client ./packages/client
RUN npm run build

# Runtime: production dependencies only, the compiled code and the files it reads by path.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error && npm cache clean --force
COPY --from=build /app/dist ./dist
# The default FAIRLANE_TENANTS_FILE (src/lib/config.ts reads it from the repository root).
COPY src/tenancy/tenants.example.yaml ./src/tenancy/tenants.example.yaml
# The default FAIRLANE_DATA_DIR (admin token, instance lock of dist/workers/all.js), writable by the user below.
RUN mkdir -p .fairlane && chown node:node .fairlane
USER node
EXPOSE 3000
# /readyz: Redis answers and no dependency is still unknown. Only the api (and all) roles serve HTTP:
# docker-compose.yml disables this check for the others. slim has no curl: node's fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --single-threaded-gc: ROLE_NODE_FLAGS in src/lib/roles.ts (why); every role is a command to this entrypoint.
ENTRYPOINT ["node", "--single-threaded-gc"]
CMD ["dist/workers/all.js"]
