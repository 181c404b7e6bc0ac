#!/usr/bin/env bash
# Sets up .venv and runs the quickstart sweep (CPU, embedded mnist-5k digits, about 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gansweep run sweeps/quickstart.yaml "$@"
