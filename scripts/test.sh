#!/usr/bin/env bash
# Sets up .venv, starts PostgreSQL and an MLflow server on 127.0.0.1 for the multi-machine tests, and
# runs the whole test suite (slow tests included; add -m "not slow" to skip them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/chromium.sh   # the browser of the UI test; it is skipped without one
# In CI a test that needs the servers fails without them; elsewhere it is skipped, with the reason.
if [ "${CI:-}" = true ]; then export GANSWEEP_REQUIRE_SERVICES=1; fi
if bash scripts/services.sh >/dev/null; then
  if [ -f .cache/services/env ]; then source .cache/services/env; fi
elif [ -n "${GANSWEEP_REQUIRE_SERVICES:-}" ]; then
  exit 1
else
  echo "warning: the test servers did not start; the tests that need them will be skipped" >&2
fi
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
# The servers stay up for the next run (starting them takes a while); the last line says so.
if [ -n "${GANSWEEP_TEST_POSTGRES:-}" ]; then
  echo "left running for the next run: PostgreSQL at ${GANSWEEP_TEST_POSTGRES##*@} and the MLflow server at ${GANSWEEP_TEST_MLFLOW:-?}; stop them with: bash scripts/services.sh stop"
fi
exit "$status"
