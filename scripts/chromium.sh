#!/usr/bin/env bash
# Installs Debian's Chromium for the suite's UI test (tests/test_view.py), where apt can; does nothing when a
# Chromium is already on the PATH. Never fails: without one the UI test is skipped, and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
for name in chromium chromium-browser google-chrome; do
  command -v "$name" >/dev/null && exit 0
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "warning: no Chromium, and no apt-get as root to install it: the UI test will be skipped" >&2
  exit 0
fi
mkdir -p .cache
echo "installing Chromium for the UI test (apt-get install chromium: about 150 MB to fetch, 500 MB installed)..." >&2
if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >.cache/chromium-apt.log 2>&1 </dev/null; then
  tail -5 .cache/chromium-apt.log >&2
  echo "warning: installing Chromium failed (log: .cache/chromium-apt.log): the UI test will be skipped" >&2
fi
exit 0
