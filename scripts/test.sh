#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite (slow tests included; add -m "not slow" to skip them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
