#!/usr/bin/env bash
# npm test: install what is missing, typecheck, check the layers, the format and lint, then run the
# whole suite with node's test runner: unit, conformance and integration under coverage (c8, floor in
# .c8rc.json, report in .fairlane/coverage/), then end-to-end. Tests start their own redis-server(s)
# (test/helpers). One file at a time: the end-to-end files run several processes each and measure
# latency and fairness, which a second file competing for 2 cores would distort.
set -euo pipefail
cd "$(dirname "$0")/../../.."
FAIRLANE_NEED_REDIS_SERVER=1 FAIRLANE_NEED_CHROMIUM=1 FAIRLANE_NEED_PROMTOOL=1 bash src/dev/bin/ensure-deps.sh
echo "fairlane: typechecking..." >&2
npx --no-install tsc --noEmit
# The layers (docs/architecture.md, .dependency-cruiser.cjs): no module imports a layer above its own.
echo "fairlane: checking layers..." >&2
npx --no-install depcruise --config .dependency-cruiser.cjs --output-type err src queues workers dashboard packages/client/src
# Format and lint (biome.json): `npm run format` writes what this refuses.
echo "fairlane: checking format and lint..." >&2
npx --no-install biome ci --reporter=summary .
run_tests() { node --import tsx --test --test-concurrency=1 --test-timeout=300000 "$@"; }
# FAIRLANE_TESTS narrows the run to folders (npm run test:unit | test:integration | test:e2e), without coverage.
if [ -n "${FAIRLANE_TESTS:-}" ]; then
  # shellcheck disable=SC2086 # FAIRLANE_TESTS is a list of folders
  run_tests $(find $FAIRLANE_TESTS -name '*.test.ts' | sort) "$@"
  exit
fi
echo "fairlane: unit, conformance and integration tests, under coverage..." >&2
# shellcheck disable=SC2046 # one argument per test file
npx --no-install c8 node --import tsx --test --test-concurrency=1 --test-timeout=300000 \
  $(find test/unit test/conformance test/integration -name '*.test.ts' | sort) "$@"
echo "fairlane: end-to-end tests..." >&2
# shellcheck disable=SC2046
run_tests $(find test/e2e -name '*.test.ts' | sort) "$@"
