#!/usr/bin/env bash
# Installs the real servers the backend tests start (idempotent: skips what is present).
# Redis 7 from Debian now; the MongoDB-wire and DynamoDB servers come with their backends.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    # Try without refreshing the package lists first; refresh only when that fails.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade "$@" \
        || { as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-upgrade "$@"; }
}

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "installing redis-server (Debian)"
    apt_install redis-server
fi
# The Debian package may start a system Redis on 6379; the tests use their own ports.
redis-server --version
