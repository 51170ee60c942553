#!/usr/bin/env bash
# Installs a headless-capable Chromium from Debian's packages, for the browser test
# (tests/integration/test_html_browser.py). Idempotent and quiet: does nothing when a
# Chromium binary is already on PATH. Needs root (or passwordless sudo) and apt-get.
set -euo pipefail

for bin in chromium chromium-headless-shell chromium-browser google-chrome; do
    if command -v "$bin" >/dev/null 2>&1; then
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no chromium on PATH and no apt-get to install it" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install_chromium.sh: installing chromium needs root (or passwordless sudo)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${SUDO[@]}" apt-get update -qq && \
       "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_chromium.sh: apt-get install chromium failed" >&2
    exit 1
fi
command -v chromium >/dev/null 2>&1 || { echo "install_chromium.sh: chromium still not on PATH" >&2; exit 1; }
