#!/usr/bin/env bash
# Installs Debian's prometheus-blackbox-exporter, the baseline of bench/check_engine.py (bench only; tests never need it).
set -euo pipefail
if command -v prometheus-blackbox-exporter >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's service is not wanted: the bench starts its own exporter on a free loopback port.
apt-get install -y -qq --no-install-recommends prometheus-blackbox-exporter >/dev/null
