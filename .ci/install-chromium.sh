#!/usr/bin/env bash
# Headless Chromium and CJK fonts for the credit-report screenshot test
# (tests/test_server_report_html.py). Idempotent: installs only what is missing.
# Needs root (CI runs as root); without root it says what to install and exits 0,
# so a developer's `make test` still runs (the test then skips, unless CI=true).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then
  need+=(fonts-noto-cjk)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: not root; install these for the screenshot test: ${need[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
