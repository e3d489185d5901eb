#!/usr/bin/env bash
# Install (with test extras), then run the default test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
# The browser tests (tests/integration) drive Debian's chromium; install it when running as root with apt.
# Without it they are skipped with the reason, never failed.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
    || echo "scripts/test.sh: could not install chromium: the browser tests will be skipped" >&2
fi
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1
exec .venv/bin/python -m pytest "$@"
