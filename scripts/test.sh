#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, dependency policy, then every test
# and doctest of the workspace with all features. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's start is stamped with the seconds since the script began, so a slow CI run
# shows which step grew.
step() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*"; }

# The tests make and delete thousands of temporary directories and SQLite files. On ext4 the
# kernel's inode allocator took a fifth of the main test binary's CPU doing so (perf:
# find_inode_bit, recently_deleted; 83 s of system time in a 156 s run, 27 s and 118 s on
# tmpfs), so temporary files go to memory when the machine has a tmpfs and TMPDIR is unset.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    TMPDIR="$(mktemp -d /dev/shm/reqwest-caching-tests.XXXXXX)"
    export TMPDIR
    trap 'rm -rf "$TMPDIR"' EXIT
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc --workspace --all-features --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

if ! command -v cargo-deny >/dev/null 2>&1; then
    step "installing cargo-deny"
    # Its release profile links with fat LTO in one codegen unit; a plain optimized build
    # checks the same and installs in 98 s instead of 127 s here.
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo install cargo-deny --locked
fi
step "cargo deny check bans licenses sources"
cargo deny check bans licenses sources

step "scripts/check-packages.sh (every published crate packages, with its licenses)"
scripts/check-packages.sh

# The fuzz targets are their own workspace (nightly to run): check they still build on stable.
# In the workspace's target directory, so the dependencies it shares are not built twice.
step "cargo check --manifest-path fuzz/Cargo.toml (the fuzz targets compile)"
cargo check --quiet --manifest-path fuzz/Cargo.toml --target-dir "${CARGO_TARGET_DIR:-target}"

step "installing test servers (scripts/install-test-servers.sh)"
scripts/install-test-servers.sh

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

# What users build besides everything at once. The default build (SQLite only, no metrics) is
# tested in full: it runs the unobserved request path and the store timing without metrics,
# which --all-features never does, and the README's first command. The other combinations
# only need to compile cleanly: their code runs in the all-features tests above, so only the
# libraries are checked (their tests never run with one feature alone).
step "default features (SQLite only): cargo test -p reqwest-caching, and the quickstart"
cargo test -p reqwest-caching
cargo run --quiet --example quickstart

step "each store feature alone: cargo clippy -p reqwest-caching --no-default-features --features F"
for feature in "" sled fs redis mongodb dynamodb tiered metrics; do
    printf -- '--> [%4ds] features: %s\n' "$SECONDS" "${feature:-(none: memory only)}"
    cargo clippy --quiet -p reqwest-caching --no-default-features \
        ${feature:+--features "$feature"} -- -D warnings
done

step "each published crate on its own: cargo clippy -p CRATE (its library and binaries)"
for crate in cache-core cache-http cache-sqlite cache-sled cache-fs cache-redis cache-mongodb cache-dynamodb cache-tiered cache-cli; do
    printf -- '--> [%4ds] %s\n' "$SECONDS" "$crate"
    cargo clippy --quiet -p "$crate" -- -D warnings
done

# The examples are documentation that must keep working: each one exits non-zero when the
# behaviour it shows breaks (the feature examples assert what they print). None needs the
# internet: each starts its own origin on 127.0.0.1, and the store examples (redis, mongodb,
# dynamodb) their own server, installed by the step above. `cargo test` above built them
# already; built with its package selection (--workspace), so this build finds them done: for
# the root package alone, cargo unifies other features (the workspace enables mongodb's DNS
# resolver), and rebuilt the MongoDB driver and everything above it (246 s of a cold run).
# Then run one by one from the repository's root, as `cargo run` would.
step "examples: cargo build --workspace --all-features --examples, then each of examples/*.rs"
cargo build --quiet --workspace --all-features --examples
for path in examples/*.rs; do
    name="$(basename "$path" .rs)"
    printf -- '--> [%4ds] %s\n' "$SECONDS" "$name"
    "${CARGO_TARGET_DIR:-target}/debug/examples/$name"
done

step "all steps passed"
