#!/usr/bin/env bash
# npm start: install what is missing, then run every role in one process.
set -euo pipefail
cd "$(dirname "$0")/../../.."
bash src/dev/bin/ensure-deps.sh
# --single-threaded-gc: ROLE_NODE_FLAGS (src/lib/roles.ts says why); the exec processes inherit it.
exec node --single-threaded-gc --import tsx workers/all.ts "$@"
