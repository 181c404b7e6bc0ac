#!/usr/bin/env bash
# Creates ./.venv with gansweep and everything it needs; does nothing when that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.gansweep-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
log=$(mktemp)
echo "setting up .venv (first time: torch and friends, a few minutes)..." >&2
if ! .venv/bin/python -m pip install -e ".[dev]" >"$log" 2>&1; then
  grep -v "is ignored: it is neither" "$log" | tail -30 >&2
  echo "setup failed: see the pip output above" >&2
  exit 1
fi
rm -f "$log"
touch "$stamp"
