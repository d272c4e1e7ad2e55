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
  libgtest-dev googletest             # unit tests
  unzip ca-certificates               # corpus builder: game archives are zip files
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
