#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, dependency policy, then every test
# and doctest of the workspace with all features. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's start is stamped with the seconds since the script began, so a slow CI run
# shows which step grew.
step() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*"; }

# Everything the script starts or makes is undone on exit, whatever step it stopped at: the
# builds run beside the tests (their process group), their logs, the temporary directory.
owned_tmpdir="" builds_pid="" tests_log="" builds_log=""
cleanup() {
    if [ -n "$builds_pid" ]; then kill -- "-$builds_pid" 2>/dev/null || true; fi
    rm -f ${tests_log:+"$tests_log"} ${builds_log:+"$builds_log"}
    if [ -n "$owned_tmpdir" ]; then rm -rf "$owned_tmpdir"; fi
}
trap cleanup EXIT

# The tests make and delete thousands of temporary directories and SQLite files. On ext4 the
# kernel's inode allocator took a fifth of the main test binary's CPU doing so (perf:
# find_inode_bit, recently_deleted; 83 s of system time in a 156 s run, 27 s and 118 s on
# tmpfs), so temporary files go to memory when the machine has a tmpfs with room for them
# (the largest test files are 64 MiB; a container's /dev/shm is often 64 MiB in all) and
# TMPDIR is unset.
shm_free_kib() { df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }'; }
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] \
    && [ "$(shm_free_kib || echo 0)" -ge $((2 * 1024 * 1024)) ]; then
    owned_tmpdir="$(mktemp -d /dev/shm/reqwest-caching-tests.XXXXXX)"
    export TMPDIR="$owned_tmpdir"
fi

# A fresh checkout (CI's case) compiles the workspace's own crates without incremental state:
# writing it made a cold build of their tests 120 s instead of 75 s here, and a fresh checkout
# never reuses it. A target directory from an earlier run keeps cargo's default, where a small
# change rebuilds in half the time.
if [ -z "${CARGO_INCREMENTAL:-}" ] && [ ! -d "${CARGO_TARGET_DIR:-target}" ]; then
    export CARGO_INCREMENTAL=0
fi

# A toolchain installed with rustup's minimal profile has neither formatter nor linter.
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
        step "installing the $component component (rustup component add $component)"
        rustup component add "$component"
    fi
done

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

if ! command -v cargo-deny >/dev/null 2>&1; then
    step "installing cargo-deny"
    # Unoptimized and without debug info: it installs in 86 s instead of 199 s for an
    # optimized build (fat LTO off) on a cold 2-core machine, and its checks of this workspace
    # then take 4.5 s instead of 1.8 s. The version the policy (deny.toml) was checked with.
    CARGO_PROFILE_DEV_DEBUG=false CARGO_INCREMENTAL=0 \
        cargo install cargo-deny --version 0.20.2 --locked --debug
fi
step "cargo deny check bans licenses sources"
cargo deny check bans licenses sources

step "cargo doc --workspace --all-features --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "scripts/check-packages.sh (every published crate packages, with its licenses)"
scripts/check-packages.sh

# The fuzz targets are their own workspace (nightly to run): check they still build on stable.
# In the workspace's target directory, so the dependencies it shares are not built twice, and
# without libFuzzer's C++ (fuzz/Cargo.toml: its default feature), which only running needs.
step "cargo check --manifest-path fuzz/Cargo.toml (the fuzz targets compile)"
cargo check --quiet --manifest-path fuzz/Cargo.toml --no-default-features \
    --target-dir "${CARGO_TARGET_DIR:-target}"

step "installing test servers (scripts/install-test-servers.sh)"
scripts/install-test-servers.sh

# The builds users make besides everything at once, and the default build's tests, compile
# only (scripts/check-builds.sh: about 5 minutes of a cold run), while the tests mostly wait on
# servers, timers and sockets (half of the 2 CPUs idle). So they run beside the tests at idle
# priority: SCHED_IDLE gets a CPU only when no test thread wants one, so the tests run as fast
# as alone. They start once cargo prints its first `Running`: it holds the build directory's
# lock until the tests are built, and a build started earlier would take the lock first and
# hold the tests back. Their output is printed when they end; the script stops them if the
# tests fail.
step "cargo test --workspace --all-features (and, beside it, scripts/check-builds.sh)"
tests_log="$(mktemp)"
builds_log="$(mktemp)"
idle_priority=(nice -n 19)
if chrt --idle 0 true 2>/dev/null; then idle_priority=(chrt --idle 0); fi
setsid bash -c 'until grep -q "^ *Running " "$0"; do sleep 1; done; exec "$@"' \
    "$tests_log" "${idle_priority[@]}" scripts/check-builds.sh >"$builds_log" 2>&1 &
builds_pid=$!
cargo test --workspace --all-features 2>&1 | tee "$tests_log"

step "scripts/check-builds.sh, run beside the tests: waiting for it, then its output"
builds_status=0
wait "$builds_pid" || builds_status=$?
cat "$builds_log"
if [ "$builds_status" -ne 0 ]; then
    echo "scripts/check-builds.sh failed (exit $builds_status): see its output above" >&2
    exit "$builds_status"
fi

step "default features (SQLite only): cargo test -p reqwest-caching, and the quickstart"
cargo test -p reqwest-caching
cargo run --quiet --example quickstart

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
