#!/usr/bin/env bash
# Builds the JavaScript example preset to a WebAssembly component.
#
#   presets-wasm/examples/js/build.sh <out.wasm>
#
# Installs @bytecodealliance/componentize-js with `npm ci` from the committed package-lock.json
# into the toolchain cache (MEDIAHOST_TOOLCHAINS, default ~/.cache/mediahost/toolchains) the first
# time, keyed by the lock file's hash, then builds preset.js + mediahost-preset.js against
# wit/2.0.0 into <out.wasm>. Needs node (>= 18) and npm.
set -euo pipefail

out=${1:?usage: build.sh <out.wasm>}
here=$(cd "$(dirname "$0")" && pwd)
wit=$(cd "$here/../../../wit/2.0.0" && pwd)
cache=${MEDIAHOST_TOOLCHAINS:-${XDG_CACHE_HOME:-$HOME/.cache}/mediahost/toolchains}
lock_hash=$(sha256sum "$here/package-lock.json" | cut -c1-16)
tools=$cache/componentize-js-$lock_hash

say() { echo "build.sh (js): $*" >&2; }

if [[ ! -f $tools/.installed ]]; then
  say "installing componentize-js (npm ci) into $tools"
  command -v npm >/dev/null || { say "npm is not on PATH"; exit 1; }
  rm -rf "$tools"
  mkdir -p "$tools"
  cp "$here/package.json" "$here/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$tools/.installed"
fi

mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/preset.js" "$here/mediahost-preset.js" "$work/"
# componentize-js reads the WIT through its own sandboxed filesystem: give it a relative path.
cp -r "$wit" "$work/wit"
# http and fetch-event are off: the host links no wasi:http. stdio stays on, so console.log and
# console.error reach the job's log.
(cd "$work" && "$tools/node_modules/.bin/componentize-js" --wit wit --world-name preset-world \
  --disable http fetch-event --out preset.wasm preset.js >&2)
mv "$work/preset.wasm" "$out"
say "wrote $out ($(stat -c %s "$out") bytes)"
