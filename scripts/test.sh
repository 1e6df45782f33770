#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, dependency policy, then every test
# and doctest of the workspace with all features. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc --workspace --all-features --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

if ! command -v cargo-deny >/dev/null 2>&1; then
    step "installing cargo-deny"
    cargo install cargo-deny --locked
fi
step "cargo deny check bans licenses sources"
cargo deny check bans licenses sources

step "installing test servers (scripts/install-test-servers.sh)"
scripts/install-test-servers.sh

step "cargo test --workspace --all-features"
cargo test --workspace --all-features
