#!/usr/bin/env bash
# Downloads, verifies and unpacks the pinned XGBoost runtime (scripts/xgboost-runtime.pin)
# into a cache outside the build tree, once, and prints the unpacked prefix:
#   PREFIX/xgboost/lib/libxgboost.so (+ libxgboost.so.3, its soname)
#   PREFIX/xgboost_cpu.libs/libgomp-*.so   (the OpenMP runtime the wheel bundles;
#                                          libxgboost.so finds it through its RPATH)
#   PREFIX/include/xgboost/c_api.h
#   PREFIX/share/doc/xgboost/LICENSE
# The cache is $SMSERVE_CACHE_DIR, else $XDG_CACHE_HOME/smserve, else ~/.cache/smserve.
# Downloads go through pip by package name; a file whose sha256 differs from the pin
# is deleted and the script fails.
#   scripts/xgboost-runtime.sh [x86_64|aarch64]   unpack (default: this machine) and print PREFIX
#   scripts/xgboost-runtime.sh --hashes           print the pin lines for the pinned version
#   scripts/xgboost-runtime.sh --cache-dir        print the cache directory
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pin="$here/xgboost-runtime.pin"
die() { echo "xgboost-runtime.sh: $*" >&2; exit 1; }
pinned() { sed -n "s/^$1=//p" "$pin"; }

version="$(pinned version)"
[ -n "$version" ] || die "no version in $pin"
cache="${SMSERVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smserve}"
downloads="$cache/downloads"

python=/usr/bin/python3
"$python" -m pip --version >/dev/null 2>&1 || python=python3

wheel_name() { echo "xgboost_cpu-$version-py3-none-manylinux_2_28_$1.whl"; }
sdist_name() { echo "xgboost-$version.tar.gz"; }

# fetch FILE SHA256 PIP-ARGS...: FILE in $downloads with the pinned hash, downloading it
# through pip when absent.
fetch() {
  local file=$1 want=$2 got
  shift 2
  mkdir -p "$downloads"
  if [ ! -f "$downloads/$file" ]; then
    echo "xgboost-runtime.sh: downloading $file" >&2
    "$python" -m pip --version >/dev/null 2>&1 || die "pip is needed (apt-get install python3-pip)"
    "$python" -m pip download --quiet --no-deps --disable-pip-version-check \
      --dest "$downloads" "$@" >&2 || die "pip could not download $file"
    [ -f "$downloads/$file" ] || die "pip did not produce $downloads/$file"
  fi
  got="$(sha256sum "$downloads/$file" | cut -d' ' -f1)"
  if [ -n "$want" ] && [ "$got" != "$want" ]; then
    rm -f "$downloads/$file"
    die "$file has sha256 $got, the pin says $want (deleted; check $pin)"
  fi
  echo "$got"
}

fetch_wheel() {
  fetch "$(wheel_name "$1")" "${2:-}" --only-binary=:all: --platform "manylinux_2_28_$1" \
    --python-version 3.12 "xgboost-cpu==$version"
}
# The sdist is only unpacked for its header (pip reads its metadata on the way).
fetch_sdist() {
  fetch "$(sdist_name)" "${1:-}" --no-binary=xgboost --python-version 3.12 "xgboost==$version"
}

if [ "${1:-}" = "--cache-dir" ]; then
  echo "$cache"
  exit 0
fi
if [ "${1:-}" = "--hashes" ]; then
  echo "version=$version"
  for a in x86_64 aarch64; do echo "sha256_$a=$(fetch_wheel "$a")"; done
  echo "sha256_sdist=$(fetch_sdist)"
  exit 0
fi

arch="${1:-$(uname -m)}"
case "$arch" in
  x86_64 | aarch64) ;;
  arm64) arch=aarch64 ;;
  amd64) arch=x86_64 ;;
  *) die "no $version wheel is pinned for architecture $arch" ;;
esac
prefix="$cache/xgboost-$version/$arch"
if [ -f "$prefix/.complete" ] && [ -f "$prefix/share/doc/xgboost/LICENSE" ]; then
  echo "$prefix"
  exit 0
fi

fetch_wheel "$arch" "$(pinned "sha256_$arch")" >/dev/null
fetch_sdist "$(pinned sha256_sdist)" >/dev/null

tmp="$prefix.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/include/xgboost"
"$python" - "$downloads/$(wheel_name "$arch")" "$downloads/$(sdist_name)" "$tmp" <<'PY'
import os, sys, tarfile, zipfile
wheel, sdist, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    libs = [n for n in z.namelist()
            if n == "xgboost/lib/libxgboost.so" or n.startswith("xgboost_cpu.libs/")]
    if "xgboost/lib/libxgboost.so" not in libs:
        sys.exit("no xgboost/lib/libxgboost.so in " + wheel)
    for n in libs:
        if n.endswith("/"):
            continue
        z.extract(n, out)
        os.chmod(os.path.join(out, n), 0o755)
    # The license travels with the library (into the image too).
    lic = [n for n in z.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    if len(lic) != 1:
        sys.exit("no single *.dist-info/licenses/LICENSE in " + wheel)
    os.makedirs(os.path.join(out, "share/doc/xgboost"), exist_ok=True)
    with open(os.path.join(out, "share/doc/xgboost/LICENSE"), "wb") as f:
        f.write(z.read(lic[0]))
with tarfile.open(sdist) as t:
    header = [m for m in t.getmembers() if m.isfile()
              and m.name.endswith("/cpp_src/include/xgboost/c_api.h")]
    if len(header) != 1:
        sys.exit("no single cpp_src/include/xgboost/c_api.h in " + sdist)
    data = t.extractfile(header[0]).read()
    with open(os.path.join(out, "include/xgboost/c_api.h"), "wb") as f:
        f.write(data)
PY
# The library's soname is libxgboost.so.3: what the dynamic loader looks for.
soname="$(LC_ALL=C readelf -d "$tmp/xgboost/lib/libxgboost.so" 2>/dev/null |
  sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ -n "$soname" ] || soname="libxgboost.so.${version%%.*}"
[ "$soname" = libxgboost.so ] || ln -sf libxgboost.so "$tmp/xgboost/lib/$soname"
echo "$version $arch" >"$tmp/.complete"
rm -rf "$prefix"
mv "$tmp" "$prefix"
echo "$prefix"
