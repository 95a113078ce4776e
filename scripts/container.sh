#!/usr/bin/env bash
# Builds the smserve image from the repository's Dockerfile, unchanged, and tests it,
# on a machine with no Docker engine: podman and buildah from Debian, and a
# debian:bookworm-slim-equivalent base made offline by debootstrap and imported under
# the name the Dockerfile's FROM uses (a manifest list with one image per
# architecture, as the registry's is), so nothing is pulled from a registry. Then it
# runs the image (buildah run, chroot isolation, host network) and checks /ping, a CSV
# and a JSON invocation against models/sample.expected, a refused artifact through
# `check`, and a SIGTERM shutdown; it prints the image's size.
# Another architecture (arm64 on an x86_64 machine) is built and run the same way,
# under qemu-user through binfmt_misc, which this script registers for the run.
# Idempotent: the bases (build-container/) and podman's layer cache make re-runs fast.
#   scripts/container.sh                    build and test for this machine
#   scripts/container.sh --arch arm64       the same for arm64 (image localhost/smserve:arm64)
#   SMS_REBUILD_BASE=1 scripts/container.sh   debootstrap the base again
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="$root/build-container"
say() { echo "container.sh: $*"; }
die() { echo "container.sh: FAILED: $*" >&2; exit 1; }
host_arch="$(dpkg --print-architecture)"
arch="$host_arch"
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ $# -ge 2 ] || die "--arch needs amd64 or arm64"; arch="$2"; shift 2 ;;
    *) die "unknown argument '$1' (usage: scripts/container.sh [--arch amd64|arm64])" ;;
  esac
done
case "$arch" in amd64 | arm64) ;; *) die "--arch $arch: amd64 or arm64 only" ;; esac
image="localhost/smserve:latest"
[ "$arch" = "$host_arch" ] || image="localhost/smserve:$arch"
platform="linux/$arch"
# shellcheck source=scripts/lib/smoke.sh
. "$root/scripts/lib/smoke.sh"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
t0=$SECONDS
mkdir -p "$out"

# --- tools ------------------------------------------------------------------------
packages=(podman buildah debootstrap fuse-overlayfs uidmap curl python3)
[ "$arch" = "$host_arch" ] || packages+=(qemu-user-static)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- another architecture: qemu-user through binfmt_misc ---------------------------
# The F flag makes the kernel open the interpreter at registration, so it also
# runs inside the build's and the container's chroots. A registration this script
# made is removed when it exits.
binfmt=/proc/sys/fs/binfmt_misc
registered=""
unregister() { [ -z "$registered" ] || echo -1 >"$binfmt/$registered" 2>/dev/null || true; }
if [ "$arch" != "$host_arch" ]; then
  case "$arch" in arm64) qemu_name=qemu-aarch64 ;; esac
  [ -e "$binfmt/register" ] || $sudo mount -t binfmt_misc binfmt_misc "$binfmt" ||
    die "cannot mount binfmt_misc at $binfmt (needed to run $arch programs)"
  if [ ! -e "$binfmt/$qemu_name" ]; then
    conf="/usr/lib/binfmt.d/$qemu_name.conf"
    [ -s "$conf" ] || die "no $conf (qemu-user-static)"
    $sudo sh -c "cat '$conf' >'$binfmt/register'" || die "cannot register $conf with binfmt_misc"
    registered="$qemu_name"
  fi
  grep -q '^flags: .*F' "$binfmt/$qemu_name" || die "$binfmt/$qemu_name lacks the F flag; chroots cannot run $arch programs"
  say "$arch programs run under $(awk '/^interpreter/ {print $2}' "$binfmt/$qemu_name")"
fi
trap unregister EXIT

# --- the base image, made offline --------------------------------------------------
# Every FROM that is not a stage name must be the one base this script provides.
# (The runtime stage is FROM scratch: an empty base, nothing to provide.)
base="$(awk 'toupper($1) == "FROM" {print $2}' Dockerfile | sort -u | grep -v -x -F -f <(
  awk 'toupper($1) == "FROM" && toupper($3) == "AS" {print $4}' Dockerfile) | grep -v -x scratch || true)"
[ "$base" = "debian:bookworm-slim" ] || die "the Dockerfile's FROM is '$base'; this script makes debian:bookworm-slim only"
base_ref="docker.io/library/debian:bookworm-slim" # a manifest list of the arch_refs
arch_ref="localhost/debian-bookworm-slim:$arch"

# The Debian mirror apt uses on this machine (deb822 .sources or one-line lists).
apt_uri() { # $1: suite
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$1" '
      /^URIs:/ {u = $2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == s) print u} /^$/ {u = ""}'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk -v s="$1" '$1 == "deb" && $3 == s {print $2}'
  } | head -1 || true
}
mirror="${SMS_DEBIAN_MIRROR:-$(apt_uri bookworm)}"
mirror="${mirror:-http://deb.debian.org/debian}"
security="$(apt_uri bookworm-security)"
security="${security:-http://deb.debian.org/debian-security}"

base_tar="$out/debian-bookworm-slim-$arch.tar"
if [ "${SMS_REBUILD_BASE:-0}" = 1 ]; then
  rm -f "$base_tar"
  podman image exists "$arch_ref" && podman rmi -f "$arch_ref" >/dev/null
fi
if ! podman image exists "$arch_ref"; then
  if [ ! -s "$base_tar" ]; then
    t=$SECONDS
    rootfs="$out/rootfs-$arch"
    rm -rf "$rootfs"
    say "debootstrap --arch=$arch --variant=minbase bookworm from $mirror (a few minutes)"
    log="$out/debootstrap-$arch.log"
    $sudo debootstrap --arch="$arch" --variant=minbase bookworm "$rootfs" "$mirror" >"$log" 2>&1 ||
      { tail -20 "$log" >&2; die "debootstrap (log: $log)"; }
    # What makes Debian's official image "slim": dpkg leaves out docs, man pages and
    # translations, apt keeps no .debs; and its sources: bookworm, -updates, -security.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
CFG
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,info,groff,linda}/* "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
      "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs/etc/hostname"
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    : >"$rootfs/etc/resolv.conf"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$rootfs"
    say "base root filesystem: $(du -h "$base_tar" | cut -f1) ($((SECONDS - t)) s)"
  fi
  podman import --quiet --arch "$arch" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$base_tar" "$arch_ref" >/dev/null || die "podman import"
  say "imported $arch_ref from $base_tar"
fi
# The name the Dockerfile uses: a manifest list of every architecture's base made here,
# so that the build's --platform picks the right one, as it would from the registry.
podman manifest exists "$base_ref" 2>/dev/null || ! podman image exists "$base_ref" ||
  podman untag "$base_ref" "$base_ref" # an image (not a list) of that name, from an older run
podman manifest exists "$base_ref" 2>/dev/null && podman manifest rm "$base_ref" >/dev/null
podman manifest create "$base_ref" >/dev/null || die "podman manifest create $base_ref"
for a in amd64 arm64; do
  podman image exists "localhost/debian-bookworm-slim:$a" || continue
  podman manifest add "$base_ref" "containers-storage:localhost/debian-bookworm-slim:$a" >/dev/null ||
    die "podman manifest add $a"
done
say "base $arch_ref: $(podman image inspect --format '{{.Size}}' "$arch_ref" |
  awk '{printf "%.1f MB", $1 / 1e6}')"

# --- build the real Dockerfile --------------------------------------------------------
t=$SECONDS
# The build stage fetches the pinned XGBoost runtime through pip. The wheel is
# fetched and verified here first, and the build reads it from this machine's
# download cache (read-only), so the image build does not download it again.
runtime_cache="$(scripts/xgboost-runtime.sh --cache-dir)"
scripts/xgboost-runtime.sh >/dev/null
podman build --isolation chroot --pull=never --network host --platform "$platform" -f Dockerfile -t "$image" \
  --volume "$runtime_cache/downloads:/root/.cache/smserve/downloads:ro" . \
  >"$out/build-$arch.log" 2>&1 || { tail -40 "$out/build-$arch.log" >&2; die "podman build (log: $out/build-$arch.log)"; }
[ "$(podman image inspect --format '{{.Architecture}}' "$image")" = "$arch" ] ||
  die "$image is for $(podman image inspect --format '{{.Architecture}}' "$image"), not $arch"
size_bytes="$(podman image inspect --format '{{.Size}}' "$image")"
size_mb="$(awk -v b="$size_bytes" 'BEGIN {printf "%.1f", b / 1e6}')"
say "built $image for $platform ($((SECONDS - t)) s): $size_mb MB ($size_bytes bytes)"
awk -v b="$size_bytes" 'BEGIN {exit !(b < 150e6)}' || die "image is $size_mb MB, over the 150 MB target"

# --- what SageMaker reads from the image's config ------------------------------------
config() { podman image inspect --format "$1" "$image"; }
[ "$(config '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/smserve"]' ] || die "ENTRYPOINT is $(config '{{json .Config.Entrypoint}}')"
[ "$(config '{{json .Config.Cmd}}')" = '["serve"]' ] || die "CMD is $(config '{{json .Config.Cmd}}')"
config '{{json .Config.Env}}' | grep -q '"SM_MODEL_DIR=/opt/ml/model"' || die "no SM_MODEL_DIR=/opt/ml/model"
[ "$(config '{{index .Config.Labels "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"}}')" = true ] ||
  die "no accept-bind-to-port label"
[ "$(config '{{index .Config.Labels "com.amazonaws.sagemaker.capabilities.multi-models"}}')" = true ] ||
  die "no multi-models label"
config '{{json .Config.ExposedPorts}}' | grep -q '"8080/tcp"' || die "port 8080 is not exposed"
say "config: ENTRYPOINT [/usr/local/bin/smserve], CMD [serve], SM_MODEL_DIR, EXPOSE 8080, accept-bind-to-port and multi-models labels"

# --- run it -------------------------------------------------------------------------
containers=()
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  unregister
}
trap cleanup EXIT
ctr="$(buildah from --pull=never --quiet --arch "$arch" "$image")"
containers+=("$ctr")
# buildah run takes a command, not the image's ENTRYPOINT + CMD: spell them out, as
# `docker run IMAGE serve|check` would run them (checked above).
run() { buildah run --isolation chroot --network host "$@"; }
entry=/usr/local/bin/smserve

# The runtime stage holds the server and the libraries it loads: no compiler, no
# python, no shell, no package manager; and the license of everything it ships.
mnt="$(buildah mount "$ctr")"
for f in usr/bin/gcc usr/bin/cc usr/bin/cmake usr/bin/python3 usr/bin/sh usr/bin/apt-get var/lib/apt; do
  [ ! -e "$mnt/$f" ] || die "the runtime image has /$f"
done
[ -f "$mnt/usr/share/doc/libc6/copyright" ] || die "the runtime image lacks Debian's copyright files"
[ -n "$(find "$mnt/opt/smserve/xgboost" -path '*/share/doc/xgboost/LICENSE')" ] ||
  die "the runtime image lacks XGBoost's license"
[ "$(stat -c %a "$mnt/tmp")" = 1777 ] || die "/tmp in the image is not mode 1777"
files="$(find "$mnt" -xdev -type f | wc -l)"
buildah umount "$ctr" >/dev/null
say "runtime stage: $files files; no gcc, cmake, python3, shell or apt; copyright files and XGBoost's license"

work="$out/run-$arch"
rm -rf "$work"
mkdir -p "$work/refuse" "$work/empty"
cp tests/fixtures/aws/pickled-booster.refuse.pkl "$work/refuse/"

# check: the sample model is servable with the native evaluator.
run -v "$root/models/sample:/opt/ml/model:ro" "$ctr" "$entry" check >"$work/check.out" 2>&1 ||
  { cat "$work/check.out" >&2; die "smserve check on models/sample"; }
grep -q '^engine: .*native evaluator' "$work/check.out" || { cat "$work/check.out" >&2; die "check: no native evaluator"; }
say "check models/sample: exit 0; $(grep '^engine:' "$work/check.out" | cut -c1-100)..."

# check: the sample as model.tar.gz (libarchive, extraction under /tmp).
mkdir -p "$work/tarball"
tar -C models/sample -czf "$work/tarball/model.tar.gz" .
run -v "$work/tarball:/opt/ml/model:ro" "$ctr" "$entry" check >"$work/tarball.out" 2>&1 ||
  { cat "$work/tarball.out" >&2; die "smserve check on models/sample as model.tar.gz"; }
grep -q '^OK ' "$work/tarball.out" || { cat "$work/tarball.out" >&2; die "check: model.tar.gz not OK"; }
say "check model.tar.gz: exit 0; $(grep '^OK' "$work/tarball.out" | cut -c1-100)..."

# check: a pickled booster is refused, with the reason, and a non-zero exit.
status=0
run -v "$work/refuse:/opt/ml/model:ro" "$ctr" "$entry" check >"$work/refuse.out" 2>&1 || status=$?
[ "$status" -ne 0 ] || { cat "$work/refuse.out" >&2; die "check accepted a pickled booster"; }
grep -q '^REFUSED pickled-booster.refuse.pkl' "$work/refuse.out" || { cat "$work/refuse.out" >&2; die "check printed no reason"; }
say "check pickle: exit $status; $(grep '^REFUSED' "$work/refuse.out" | cut -c1-100)..."

# check: an image run with no model mounted says so.
status=0
run -v "$work/empty:/opt/ml/model:ro" "$ctr" "$entry" check >"$work/empty.out" 2>&1 || status=$?
[ "$status" -ne 0 ] || { cat "$work/empty.out" >&2; die "check accepted an empty /opt/ml/model"; }
grep -q '^REFUSED .*check empty' "$work/empty.out" || { cat "$work/empty.out" >&2; die "check printed no reason for an empty model dir"; }
say "check empty /opt/ml/model: exit $status; $(grep '^REFUSED' "$work/empty.out" | cut -c1-100)..."

# serve: the sample model mounted at /opt/ml/model, on a free port.
port="$(free_port)"
t=$SECONDS
run -e SAGEMAKER_BIND_TO_PORT="$port" -v "$root/models/sample:/opt/ml/model:ro" \
  "$ctr" "$entry" serve >"$work/serve.log" 2>&1 &
server=$!
wait_for_ping "$port" "$server" "$work/serve.log" 300
say "serve: /ping 200 on port $port ($((SECONDS - t)) s after start)"

check_sample_predictions "serve" "$port" "$work"

# stop_server LABEL LOG: SIGTERM, as SageMaker sends it, to smserve itself (buildah
# run's descendant, in a chroot, so in the host's process list, named smserve); it
# must exit 0.
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
stop_server() {
  local label=$1 log=$2 pid="" c t status=0
  for c in $(descendants "$server"); do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = smserve ] && pid="$c"
  done
  [ -n "$pid" ] || die "$label: no smserve process under buildah run ($server)"
  t=$SECONDS
  kill -TERM "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && die "$label: smserve still running 30 s after SIGTERM"
  wait "$server" || status=$?
  server=""
  [ "$status" -eq 0 ] || { tail -5 "$log" >&2; die "$label: smserve exited $status after SIGTERM"; }
  say "$label: SIGTERM: smserve exited 0 in $((SECONDS - t)) s"
}
stop_server "serve" "$work/serve.log"

# serve a multi-model endpoint, as SageMaker starts one (SAGEMAKER_MULTI_MODEL=true,
# the model where SageMaker puts it), then load, invoke and unload through /models.
port="$(free_port)"
run -e SAGEMAKER_BIND_TO_PORT="$port" -e SAGEMAKER_MULTI_MODEL=true \
  -v "$root/models/sample:/opt/ml/models/sample/model:ro" \
  "$ctr" "$entry" serve >"$work/mme.log" 2>&1 &
server=$!
wait_for_ping "$port" "$server" "$work/mme.log" 300
code="$(curl -s -o "$work/mme-load.out" -w '%{http_code}' "http://127.0.0.1:$port/models" \
  -H 'Content-Type: application/json' \
  -d '{"model_name": "sample", "url": "/opt/ml/models/sample/model"}')"
[ "$code" = 200 ] || { cat "$work/mme-load.out" "$work/mme.log" >&2; die "multi-model: POST /models answered $code"; }
curl -sf "http://127.0.0.1:$port/models/sample/invoke" -H 'Content-Type: text/csv' \
  --data-binary @models/sample.csv >"$work/mme.out" || die "multi-model: invoke"
compare_predictions "multi-model: CSV" "$work/mme.out" models/sample.expected ||
  die "multi-model predictions"
code="$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$port/models/sample")"
[ "$code" = 200 ] || die "multi-model: DELETE /models/sample answered $code"
say "multi-model: POST /models, /models/sample/invoke exact, DELETE"
stop_server "multi-model" "$work/mme.log"

say "image $image ($platform): $size_mb MB; all container checks passed ($((SECONDS - t0)) s)"
podman images --filter reference="$image" --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}'
