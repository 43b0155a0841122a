#!/usr/bin/env bash
# Builds the Python example preset to a WebAssembly component.
#
#   presets-wasm/examples/python/build.sh <out.wasm>
#
# Installs componentize-py (pinned below) from PyPI into a virtualenv in the toolchain cache
# (MEDIAHOST_TOOLCHAINS, default ~/.cache/mediahost/toolchains) the first time, then builds
# app.py + mediahost_preset.py against wit/2.0.0 into <out.wasm>. Needs python3 (>= 3.10) with venv.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

out=${1:?usage: build.sh <out.wasm>}
here=$(cd "$(dirname "$0")" && pwd)
wit=$(cd "$here/../../../wit/2.0.0" && pwd)
cache=${MEDIAHOST_TOOLCHAINS:-${XDG_CACHE_HOME:-$HOME/.cache}/mediahost/toolchains}
venv=$cache/componentize-py-$COMPONENTIZE_PY_VERSION

say() { echo "build.sh (python): $*" >&2; }

if [[ ! -f $venv/.installed ]]; then
  say "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
  command -v python3 >/dev/null || { say "python3 is not on PATH"; exit 1; }
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
  touch "$venv/.installed"
fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/app.py" "$here/mediahost_preset.py" "$work/"
# Bindings are generated into the build's own directory, never into the source tree.
(cd "$work" && "$venv/bin/componentize-py" -d "$wit" -w preset-world bindings . >/dev/null)
(cd "$work" && "$venv/bin/componentize-py" -d "$wit" -w preset-world componentize app -p . -o "$work/preset.wasm" >/dev/null)
mv "$work/preset.wasm" "$out"
say "wrote $out ($(stat -c %s "$out") bytes)"
