#!/usr/bin/env bash
# The builds users make besides everything at once, each checked on its own, and the build of
# the default features' tests (scripts/test.sh runs those tests after, and runs this script
# beside the all-features tests). The default build (SQLite only, no metrics) is tested in
# full: it runs the unobserved request path and the store timing without metrics, which
# --all-features never does, and the README's first command. The other combinations only need
# to compile cleanly: their code runs in the all-features tests, so only the libraries are
# checked (their tests never run with one feature alone).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "each store feature alone: cargo clippy -p reqwest-caching --no-default-features --features F"
for feature in "" sled fs redis mongodb dynamodb tiered metrics; do
    printf -- '--> [%4ds] features: %s\n' "$SECONDS" "${feature:-(none: memory only)}"
    cargo clippy --quiet -p reqwest-caching --no-default-features \
        ${feature:+--features "$feature"} -- -D warnings
done

echo "each published crate on its own: cargo clippy -p CRATE (its library and binaries)"
for crate in cache-core cache-http cache-sqlite cache-sled cache-fs cache-redis cache-mongodb cache-dynamodb cache-tiered cache-cli; do
    printf -- '--> [%4ds] %s\n' "$SECONDS" "$crate"
    cargo clippy --quiet -p "$crate" -- -D warnings
done

printf -- '--> [%4ds] default features: cargo test -p reqwest-caching --no-run, the quickstart\n' "$SECONDS"
cargo test --quiet -p reqwest-caching --no-run
cargo build --quiet --example quickstart
printf -- '--> [%4ds] done\n' "$SECONDS"
