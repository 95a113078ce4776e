#!/usr/bin/env bash
# Makes the runtime image's root filesystem; the Dockerfile's build stage runs it and
# the runtime stage is this directory on an empty base (FROM scratch). It holds the
# binary and exactly the shared libraries it loads (its ldd closure, which includes the
# dynamic loader), at the paths the loader looks in, with the copyright file of every
# Debian package a library comes from; /tmp (for model.tar.gz extraction) and the
# empty /opt/ml/model. No shell, no package manager: nothing the server does not run.
#   scripts/image-rootfs.sh BINARY ROOTFS [VENDORED_PREFIX...]
# A library under a VENDORED_PREFIX (the pinned XGBoost runtime) is taken with that
# prefix's share/doc; any other library must belong to a Debian package.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BINARY ROOTFS [VENDORED_PREFIX...]" >&2; exit 2; }
bin="$1" root="$2"
shift 2
vendored=("$@")
die() { echo "image-rootfs.sh: $*" >&2; exit 1; }
[ -x "$bin" ] || die "$bin is not an executable"
[ ! -e "$root" ] || die "$root exists; give a new directory"

mkdir -p "$root/usr/local/bin" "$root/opt/ml/model" "$root/tmp" "$root/usr/share/doc"
chmod 1777 "$root/tmp"
# Debian's merged /usr: /lib, /lib64, /bin, /sbin are links into /usr. The loader's
# path compiled into every binary (/lib64/ld-linux-x86-64.so.2, /lib/ld-linux-aarch64.so.1)
# goes through them.
for d in bin sbin lib lib32 lib64 libx32; do
  [ -L "/$d" ] && ln -s "$(readlink "/$d")" "$root/$d"
done
install -m 0755 "$bin" "$root/usr/local/bin/$(basename "$bin")"

# ldd prints "soname => /path (addr)" per library and "/path (addr)" for the loader.
closure="$(LC_ALL=C ldd "$bin")" || die "ldd $bin failed"
if grep -q 'not found' <<<"$closure"; then
  die "libraries not found: $(grep 'not found' <<<"$closure" | tr -s ' \t\n' ' ')"
fi
libs="$(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$closure" | sort -u)"
[ -n "$libs" ] || die "ldd listed no libraries for $bin"

packages=()
docs=()
n=0
while read -r lib; do
  # The file, under the name the loader asks for, in its directory's real location.
  dir="$(realpath "$(dirname "$lib")")"
  install -D -m 0644 "$(realpath "$lib")" "$root$dir/$(basename "$lib")"
  case "$(basename "$lib")" in ld-linux*) chmod 0755 "$root$dir/$(basename "$lib")" ;; esac
  n=$((n + 1))
  own=""
  for v in "${vendored[@]}"; do
    case "$dir/" in "$(realpath "$v")"/*) own="$v" ;; esac
  done
  if [ -n "$own" ]; then
    [ -d "$own/share/doc" ] || die "$lib is vendored from $own, which has no share/doc (its license)"
    docs+=("$own")
    continue
  fi
  # The package that ships it: dpkg knows the file by one of its names, under /lib or
  # /usr/lib (merged /usr), as the soname link or the file.
  name="$(basename "$lib")"
  pkg=""
  for f in "$lib" "$dir/$name" "$(realpath "$lib")"; do
    for c in "$f" "${f#/usr}" "/usr$f"; do
      pkg="$(dpkg -S "$c" 2>/dev/null | head -1 | cut -d: -f1 || true)"
      [ -z "$pkg" ] || break 2
    done
  done
  [ -n "$pkg" ] || die "$lib belongs to no Debian package and to no vendored prefix"
  packages+=("${pkg%%:*}")
done <<<"$libs"

# A package whose doc directory is a link to another binary package of the same source
# (libgcc-s1 and libstdc++6 to gcc-12-base) has its copyright file there.
for pkg in $(printf '%s\n' "${packages[@]}" | sort -u); do
  doc="$pkg"
  if [ ! -f "/usr/share/doc/$doc/copyright" ]; then
    src="$(dpkg-query -W -f='${source:Package}' "$pkg")"
    doc="$(dpkg-query -W -f='${Package} ${source:Package}\n' | awk -v s="$src" '$2 == s {print $1}' |
      while read -r p; do [ -f "/usr/share/doc/$p/copyright" ] && { echo "$p"; break; }; done || true)"
    [ -n "$doc" ] || die "no copyright file for $pkg (source $src) under /usr/share/doc"
  fi
  install -D -m 0644 "/usr/share/doc/$doc/copyright" "$root/usr/share/doc/$doc/copyright"
done
for own in $(printf '%s\n' "${docs[@]}" | sort -u); do
  mkdir -p "$root$own/share"
  cp -a "$own/share/doc" "$root$own/share/"
done
echo "image-rootfs.sh: $root: $bin and $n libraries from $(printf '%s\n' "${packages[@]}" | sort -u | wc -l) Debian packages ($(du -sh "$root" | cut -f1))"
