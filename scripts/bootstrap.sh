#!/usr/bin/env bash
# Installs every build and test dependency of smserve on Debian bookworm, then
# the pinned XGBoost runtime (scripts/xgboost-runtime.sh: downloaded once into a
# cache outside the build tree and verified against scripts/xgboost-runtime.pin).
# Non-interactive and idempotent: packages already present are left alone,
# and apt-get update runs only when something is missing. python3-xgboost (1.7.4)
# only makes test models; smserve never links Debian's libxgboost.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcivetweb-dev libarchive-dev libopenblas-dev libjansson-dev
  libcmocka-dev clang-14 libclang-rt-14-dev
  python3-xgboost python3-numpy python3-prometheus-client python3-pip python3-venv
  binutils curl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#packages[@]} packages present"
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "bootstrap: XGBoost runtime in $("$(dirname "$0")/xgboost-runtime.sh")"
