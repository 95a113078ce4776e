#!/usr/bin/env bash
# Makes, once, a Python virtual environment holding the pinned SageMaker Python SDK
# (PyPI `sagemaker`, with its `scipy` extra for sparse RecordIO), outside the source
# tree, and prints its python. The SDK test
# (tests/sdk/test_sdk_client.py) encodes requests and decodes answers with it as a
# SageMaker client would; smserve never uses it.
# The venv is $SMSERVE_CACHE_DIR (else $XDG_CACHE_HOME/smserve, else ~/.cache/smserve)
# /sdk-venv-VERSION. It is reused while it holds the pinned version, else made anew
# (python3 -m venv, then pip install from PyPI). A lock keeps concurrent runs apart.
#   scripts/sdk-venv.sh            make or reuse the venv and print its python
#   scripts/sdk-venv.sh --version  print the pinned version
set -euo pipefail

# 2.x is the SDK that SageMaker XGBoost users call with serializers; 3.x moved them.
version=2.257.6
spec="sagemaker[scipy]==$version"

die() { echo "sdk-venv.sh: $*" >&2; exit 1; }
if [ "${1:-}" = "--version" ]; then
  echo "$version"
  exit 0
fi

cache="${SMSERVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smserve}"
venv="$cache/sdk-venv-$version"
python="$venv/bin/python"
mkdir -p "$cache"

installed() {
  [ "$(cat "$venv/.complete" 2>/dev/null)" = "$spec" ] && [ -x "$python" ] &&
    [ "$("$python" -c 'import importlib.metadata as m; print(m.version("sagemaker"))' \
      2>/dev/null)" = "$version" ]
}

exec 9>"$cache/sdk-venv.lock"
flock 9
if installed; then
  echo "$python"
  exit 0
fi

echo "sdk-venv.sh: making $venv ($spec from PyPI)" >&2
start=$SECONDS
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv" >&2 ||
  die "python3 -m venv failed (apt-get install python3-venv)"
if ! "$python" -m pip install --quiet --disable-pip-version-check "$spec" >&2; then
  rm -rf "$venv"
  die "pip could not install $spec from PyPI into $venv (no network?)"
fi
echo "$spec" >"$venv/.complete"
installed || die "$venv does not report sagemaker $version after the install"
echo "sdk-venv.sh: made $venv in $((SECONDS - start)) s" >&2
echo "$python"
