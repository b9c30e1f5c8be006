#!/usr/bin/env bash
# Installs what the dashboard needs on a fresh machine. Idempotent; quick when all is there.
#   scripts/install.sh          runtime (Python packages)
#   scripts/install.sh --dev    + test tools and Debian's chromium/chromium-driver for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = "--dev" ]; then
  "$PY" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "Installing Debian's chromium and chromium-driver (browser tests)..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
else
  "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
fi
