#!/usr/bin/env bash
# Installs every system package iflame needs on Debian 12 (run as root, or with sudo available).
# Skips apt entirely when everything is already installed, so repeated runs cost nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas-dev        # tensors, autograd, optimizers; OpenBLAS for fast fp32 matmul
  libgloo-dev                         # torch.distributed (c10d) Gloo backend for CPU data parallel
  libassimp-dev                       # mesh import: OBJ, PLY, STL, OFF, glTF, DAE, AC3D, 3DS, ...
  nlohmann-json3-dev                  # JSON (reports, safetensors headers, configs)
  zlib1g-dev                          # DEFLATE for the PNG writer
  libcpp-httplib-dev                  # HTTP for `iflame serve` (and its bench and tests)
  libgtest-dev googletest             # unit tests
  clang libclang-rt-14-dev            # the sanitizer build and the libFuzzer harnesses (tests/fuzz)
  unzip ca-certificates               # corpus builder: game archives are zip files
  nodejs chromium                     # iflame view: three.js from npm; headless browser test
)
# Debian's npm, unless the installed nodejs bundles its own (NodeSource's conflicts with it).
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# The viewer of `iflame view`: three.js (pinned in web/package-lock.json) bundled with esbuild into
# one classic script, since pages opened as file:// cannot load ES modules. Redone only when
# web/'s sources are newer than the bundle; npm ci only when the lock file changed.
WEB="$(cd "$(dirname "$0")/../web" && pwd)"
BUNDLE="$WEB/dist/iflame-viewer.js"
if [ ! -f "$BUNDLE" ] || [ -n "$(find "$WEB/package.json" "$WEB/package-lock.json" "$WEB/src" -newer "$BUNDLE")" ]; then
  echo "setup: building the three.js viewer in web/"
  if [ ! "$WEB/node_modules/.package-lock.json" -nt "$WEB/package-lock.json" ]; then
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  (cd "$WEB" && npm run --silent build)
fi
