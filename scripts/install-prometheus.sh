#!/bin/sh
# Makes sure the metrics tests have a real Prometheus (prometheus and promtool): Debian's package where apt-get
# works (as root). Idempotent and quiet: it does nothing when both are already there. The tests start their own
# server on a free port, so the package's system service is stopped and disabled rather than left on :9090.
#   scripts/install-prometheus.sh
set -u

have_prometheus() {
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

if have_prometheus; then exit 0; fi

stop_packaged_service() {
    # The package's postinst starts prometheus on :9090 wherever services may start; a test must never
    # mistake that server for its own, nor find the port taken.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    elif command -v invoke-rc.d >/dev/null 2>&1; then
        invoke-rc.d prometheus stop >/dev/null 2>&1 || true
        update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
}

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log="$(mktemp "${TMPDIR:-/tmp}/install-prometheus.XXXXXX")"
    echo "install-prometheus: installing Debian's prometheus (apt-get; log in $log)"
    if { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
        >"$log" 2>&1; then
        stop_packaged_service
        if have_prometheus; then
            rm -f "$log"
            exit 0
        fi
    fi
    echo "install-prometheus: apt-get could not install prometheus; see $log" >&2
fi

echo "install-prometheus: no Prometheus is installed, so the metrics tests (tests/test_prometheus_docs.py," >&2
echo "install-prometheus: tests/test_metrics_prometheus.py) will fail with 'prometheus not found'." >&2
echo "install-prometheus: install Debian's prometheus package (it brings promtool), or put both on PATH." >&2
exit 0
