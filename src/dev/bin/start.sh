#!/usr/bin/env bash
# npm start: install what is missing, then run every role in one process.
set -euo pipefail
cd "$(dirname "$0")/../../.."
bash src/dev/bin/ensure-deps.sh
exec node --import tsx workers/all.ts "$@"
