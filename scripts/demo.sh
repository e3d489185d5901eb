#!/usr/bin/env bash
# Install, then run the main job on the bundled example data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/lossval-clean demo "$@"
