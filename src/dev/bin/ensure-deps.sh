#!/usr/bin/env bash
# Installs what npm start and npm test need on a fresh machine, and says so:
#   - npm dependencies, exactly as pinned in package-lock.json (npm ci), when
#     node_modules is missing or older than the lockfile;
#   - Debian's redis-server, when none is on PATH and REDIS_URL is unset;
#   - Debian's chromium, when FAIRLANE_NEED_CHROMIUM=1 and none is on PATH (the
#     dashboard's browser test drives it with playwright-core; FAIRLANE_CHROMIUM
#     names another binary);
#   - promtool (Debian's prometheus package), when FAIRLANE_NEED_PROMTOOL=1 and
#     none is on PATH: the tests check /metrics and the alert rules with
#     Prometheus' own parser.
set -euo pipefail
cd "$(dirname "$0")/../../.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "fairlane: installing npm dependencies (npm ci)..." >&2
  npm ci --include=dev --no-audit --no-fund --loglevel=error >&2 # npm start runs TypeScript through tsx (a dev dependency)
fi

if [ -z "${REDIS_URL:-}" ] || [ "${FAIRLANE_NEED_REDIS_SERVER:-}" = 1 ]; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "fairlane: redis-server not found; installing Debian's redis-server package..." >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server redis-tools >&2
    # The package may start a system-wide server; Fairlane runs its own.
    ($SUDO service redis-server stop || true) >/dev/null 2>&1
  fi
fi

if [ "${FAIRLANE_NEED_CHROMIUM:-}" = 1 ] && [ -z "${FAIRLANE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "fairlane: chromium not found; installing Debian's chromium package (for the dashboard's browser test)..." >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >&2
fi

if [ "${FAIRLANE_NEED_PROMTOOL:-}" = 1 ] && ! command -v promtool >/dev/null 2>&1; then
  echo "fairlane: promtool not found; installing Debian's prometheus package (for the metrics tests)..." >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >&2
  # Only promtool is wanted; the package may start a server.
  ($SUDO service prometheus stop || true) >/dev/null 2>&1
fi
