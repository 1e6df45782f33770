#!/usr/bin/env bash
# Every published crate packages (manifest metadata, files) and ships both license files.
# Packages without building them again (`--no-verify`): the test suite builds the same code.
set -euo pipefail
cd "$(dirname "$0")/.."

published=(cache-core cache-http cache-sqlite cache-sled cache-fs cache-redis cache-mongodb cache-dynamodb cache-tiered reqwest-caching)
for crate in "${published[@]}"; do
    files=$(cargo package --list --allow-dirty -p "$crate" 2>/dev/null)
    for required in LICENSE-MIT LICENSE-APACHE Cargo.toml src/lib.rs; do
        if ! grep -qx "$required" <<<"$files"; then
            echo "error: $crate's package lacks $required" >&2
            exit 1
        fi
    done
    # The metadata crates.io requires or a user expects, set in the manifest or inherited.
    # The root crate's manifest, or its crate directory's: a search by `name =` also found
    # the command-line tool's `[[bin]]`, named as the root crate.
    case "$crate" in
        reqwest-caching) manifest=Cargo.toml ;;
        *) manifest="crates/$crate/Cargo.toml" ;;
    esac
    # Within its `[package]` table: the root manifest's `[workspace.package]` has them too.
    package_table=$(sed -n '/^\[package\]/,/^\[/p' "$manifest")
    for field in description license repository keywords categories rust-version; do
        if ! grep -Eq "^$field(\.workspace)? *=" <<<"$package_table"; then
            echo "error: $manifest lacks $field" >&2
            exit 1
        fi
    done
done
cargo package --workspace --exclude test-support --exclude bench --no-verify --allow-dirty --quiet
echo "all ${#published[@]} published crates package"
