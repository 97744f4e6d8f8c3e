#!/usr/bin/env bash
# The set-up of a fresh machine: the platform BLAS and a C++ toolchain for the
# native kernels (Debian: libopenblas-dev, build-essential; macOS has
# Accelerate), then `npm ci`, which builds libs/native-kernels. Without the
# BLAS the project still installs and runs, on plain wasm (slower: the demo
# takes about 5.5 minutes instead of 4 on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v dpkg >/dev/null && ! dpkg -s libopenblas-dev build-essential >/dev/null 2>&1; then
  packages=(libopenblas-dev build-essential)
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
  else
    echo "setup: cannot install ${packages[*]} (not root, no sudo); the native kernels will not build and posttrain runs on plain wasm" >&2
  fi
fi

npm ci --no-audit --no-fund
node -e '
const s = (() => { try { return require("./libs/native-kernels/build/status.json"); } catch { return { ok: false, message: "no build status" }; } })();
console.log(s.ok ? "setup: native kernels built (" + s.message + ")" : "setup: native kernels not built, plain wasm will run: " + s.message);
'
