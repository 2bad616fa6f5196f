#!/usr/bin/env bash
# npm run build: compile every role, the CLI and the dashboard to JavaScript in dist/ (tsc with
# tsconfig.build.json, .ts imports rewritten to .js), then copy beside it what the code reads by
# path from its own folder (import.meta.url): the Lua scripts (queues/lua/script.ts) and the
# dashboard's static page (dashboard/tenantDashboard.ts). Production runs `node dist/workers/<role>.js`;
# npm start keeps running the TypeScript through tsx. Files read from the repository root
# (REPO_ROOT in src/lib/config.ts: the example tenants file) stay where they are.
# Also builds the client package, packages/client, when there is one.
set -euo pipefail
cd "$(dirname "$0")/../../.."
# Only the npm dependencies: a build needs no redis-server (ensure-deps skips it when REDIS_URL is set).
REDIS_URL="${REDIS_URL:-redis://unused}" bash src/dev/bin/ensure-deps.sh

echo "fairlane: compiling to dist/..." >&2
rm -rf dist
npx --no-install tsc -p tsconfig.build.json
find queues/lua -name '*.lua' -exec cp --parents -t dist {} +
mkdir -p dist/dashboard
cp -R dashboard/public dist/dashboard/public
chmod +x dist/src/cli/index.js # the `fairlane` bin

if [ -f packages/client/package.json ]; then
  echo "fairlane: building packages/client..." >&2
  rm -rf packages/client/dist # a deleted source file's output must not ship in the tarball
  npm --prefix packages/client run build >&2
fi
echo "fairlane: built dist/ (node dist/workers/all.js runs every role; node dist/src/cli/index.js --help)" >&2
