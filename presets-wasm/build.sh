#!/usr/bin/env bash
# Builds every preset crate in this workspace as a WebAssembly component (release,
# wasm32-wasip2) and copies each to dist/<package name>-<package version>.wasm, where the host
# loads presets from. Runs from any directory; installs nothing (needs the wasm32-wasip2 target:
# `rustup target add wasm32-wasip2`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "build.sh: the wasm32-wasip2 target is missing; run: rustup target add wasm32-wasip2" >&2
    exit 1
fi

cargo build --release --target wasm32-wasip2 "$@"

mkdir -p dist
# Each member's name and version, from its own Cargo.toml (the [package] table's first
# `name =` and `version =` lines).
members=$(sed -n '/^members/,/]/p' Cargo.toml | grep -o '"[^"]*"' | tr -d '"')
for member in $members; do
    manifest="$member/Cargo.toml"
    name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
    version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
    artifact="target/wasm32-wasip2/release/${name//-/_}.wasm"
    if [[ -z "$name" || -z "$version" || ! -f "$artifact" ]]; then
        echo "build.sh: no component for '$member' (name='$name' version='$version', looked for $artifact)" >&2
        exit 1
    fi
    cp "$artifact" "dist/$name-$version.wasm"
    echo "dist/$name-$version.wasm ($(wc -c <"$artifact") bytes)"
done
