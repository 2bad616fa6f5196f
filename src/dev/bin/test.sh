#!/usr/bin/env bash
# npm test: install what is missing, typecheck, then run the whole suite with
# node's test runner. Tests start their own redis-server(s) (test/helpers).
# One file at a time: the end-to-end files run several processes each and measure
# latency and fairness, which a second file competing for 2 cores would distort.
set -euo pipefail
cd "$(dirname "$0")/../../.."
FAIRLANE_NEED_REDIS_SERVER=1 FAIRLANE_NEED_CHROMIUM=1 FAIRLANE_NEED_PROMTOOL=1 bash src/dev/bin/ensure-deps.sh
echo "fairlane: typechecking..." >&2
npx --no-install tsc --noEmit
# The layers (docs/architecture.md, .dependency-cruiser.cjs): no module imports a layer above its own.
echo "fairlane: checking layers..." >&2
npx --no-install depcruise --config .dependency-cruiser.cjs --output-type err src queues workers dashboard packages/client/src
# FAIRLANE_TESTS narrows the run to folders (npm run test:unit | test:integration | test:e2e).
files=$(find ${FAIRLANE_TESTS:-test} -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=1 --test-timeout=300000 $files "$@"
