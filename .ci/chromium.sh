#!/usr/bin/env bash
# Debian's chromium, for the real-browser test of the HTML report (tests/test_markdown_html.py).
# Optional: that test skips without a browser. This script never fails the build: when it
# cannot install chromium it warns and exits 0.
set -u

warn() {
    echo "warning: .ci/chromium.sh: $* (the headless-browser test of the HTML report will be skipped)" >&2
    exit 0
}

if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || warn "no apt-get here: install chromium by hand"

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        warn "not root and no password-less sudo: cannot apt-get install chromium"
    fi
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
echo "installing Debian's chromium (apt-get update && apt-get install -y chromium)..."
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    warn "apt-get could not install chromium"
fi
rm -f "$log"
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
else
    warn "apt-get finished but no chromium command was found"
fi
exit 0
