#!/bin/sh
# Makes sure synthetic tests have a Chromium: Debian's package where apt-get works (as root), otherwise
# Playwright's own build. Idempotent and quiet: it does nothing when a Chromium is already there.
#   scripts/install-chromium.sh [python-with-playwright]
set -u
PYTHON="${1:-python3}"

if [ -n "${PLAYWRIGHT_CHROMIUM_PATH:-}" ] && [ -x "${PLAYWRIGHT_CHROMIUM_PATH}" ]; then exit 0; fi
if [ -x /usr/bin/chromium ]; then exit 0; fi

log="$(mktemp "${TMPDIR:-/tmp}/install-chromium.XXXXXX")"
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: installing Debian's chromium (apt-get; log in $log)"
    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1 \
        && [ -x /usr/bin/chromium ]; then
        rm -f "$log"
        exit 0
    fi
    echo "install-chromium: apt-get could not install chromium; see $log" >&2
fi

if "$PYTHON" -c "import playwright" >/dev/null 2>&1; then
    echo "install-chromium: trying 'playwright install chromium' (log in $log)"
    if "$PYTHON" -m playwright install chromium >"$log" 2>&1; then
        rm -f "$log"
        exit 0
    fi
    echo "install-chromium: 'playwright install chromium' failed; see $log" >&2
fi

echo "install-chromium: no Chromium is installed, so synthetic tests will fail with 'no Chromium found'." >&2
echo "install-chromium: install Debian's chromium package, or set PLAYWRIGHT_CHROMIUM_PATH to a Chromium binary." >&2
exit 0
