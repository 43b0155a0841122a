#!/usr/bin/env bash
# Builds every preset crate in this workspace as a WebAssembly component (release,
# wasm32-wasip2) and copies each to dist/<preset name>-<preset version>.wasm, where the host
# loads presets from. Runs from any directory; installs nothing (needs the wasm32-wasip2 target:
# `rustup target add wasm32-wasip2`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "build.sh: the wasm32-wasip2 target is missing; run: rustup target add wasm32-wasip2" >&2
    exit 1
fi

# The artifacts are looked for under this workspace's own target/, whatever the caller exported.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR
cargo build --release --target wasm32-wasip2 "$@"

mkdir -p dist

# `toml_value FILE TABLE KEY`: the string value of KEY in [TABLE] of FILE (first match), or
# nothing. Enough TOML for our manifests: `key = "value"` lines under `[table]` headers.
toml_value() {
    awk -v table="[$2]" -v key="$3" '
        /^[[:space:]]*\[/ { in_table = ($0 == table); next }
        in_table && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            sub(/^[^=]*=[[:space:]]*"/, ""); sub(/".*$/, ""); print; exit
        }' "$1"
}

# A member's artifact is named after its package; its dist file after the preset it is: the
# `[package.metadata.preset]` name and version when the manifest has that table (two versions
# of one preset are two packages, and packages in a workspace need distinct names), else the
# package's own name and version.
members=$(sed -n '/^members/,/]/p' Cargo.toml | grep -o '"[^"]*"' | tr -d '"')
for member in $members; do
    manifest="$member/Cargo.toml"
    package=$(toml_value "$manifest" package name)
    name=$(toml_value "$manifest" package.metadata.preset name)
    version=$(toml_value "$manifest" package.metadata.preset version)
    name=${name:-$package}
    version=${version:-$(toml_value "$manifest" package version)}
    artifact="target/wasm32-wasip2/release/${package//-/_}.wasm"
    if [[ -z "$name" || -z "$version" || ! -f "$artifact" ]]; then
        echo "build.sh: no component for '$member' (name='$name' version='$version', looked for $artifact)" >&2
        exit 1
    fi
    cp "$artifact" "dist/$name-$version.wasm"
    echo "dist/$name-$version.wasm ($(wc -c <"$artifact") bytes)"
done
