#!/usr/bin/env bash
# Creates ./.venv with gansweep and everything it needs; does nothing when that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.gansweep-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
log=$(mktemp)
cat >&2 <<'SAY'
setting up .venv: pip install -e ".[dev]": torch with its CUDA libraries (about 5 GB of the total), torchvision,
MLflow, Optuna, pandas, matplotlib and the test tools: about 6.3 GB, a few minutes on a fast link.
SAY
# pip's own lines go to the log; each package it fetches is named here, so a slow link is not silence.
set +e
.venv/bin/python -m pip install -e ".[dev]" 2>&1 | tee "$log" |
  grep --line-buffered -E '^(Collecting|Processing) ' | sed -u -E 's#^[A-Za-z]+ ([^ ]*/)?([^ ]+).*#  fetching \2#' >&2
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
  grep -v "is ignored: it is neither" "$log" | tail -30 >&2
  echo "setup failed: see the pip output above" >&2
  exit 1
fi
rm -f "$log"
echo ".venv is ready ($(du -sh .venv 2>/dev/null | cut -f1))" >&2
touch "$stamp"
