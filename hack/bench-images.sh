#!/usr/bin/env bash
# bench-images.sh measures troupe's images against what users have today,
# on one tmpfs and a registry on loopback (Debian's docker-registry):
#
#  1. starts from an image against starts from the equivalent bundle:
#     `troupe bench --image` with N containers at once, RUNS times (busybox
#     `sleep`; the bundle has the spec troupe makes for an image, `troupe
#     bundle --image-spec`, and the image is made of the same busybox tree);
#  2. pulling and unpacking a 100 MB image (four layers of random bytes):
#     `troupe pull` against `skopeo copy` + `umoci unpack`, RUNS times each,
#     alternated, the store emptied before each.
#
# Root; run `make build` first. It installs docker-registry, skopeo and
# umoci from Debian if they are missing (hack/install-compare.sh).
#
#   hack/bench-images.sh                 # N=1000, 3 runs
#   N=200 RUNS=1 hack/bench-images.sh    # a quick look
#   BENCHFLAGS=--warm PULL=0 hack/bench-images.sh   # warm pools of both too, no pull
#   B=/path/to/old/troupe hack/bench-images.sh   # another build, to compare
set -euo pipefail

cd "$(dirname "$0")/.."
B=${B:-$PWD/bin/troupe}
N=${N:-1000}
RUNS=${RUNS:-3}
./hack/install-compare.sh docker-registry skopeo umoci

d=$(mktemp -d /tmp/troupe-images.XXXXXX)
mount -t tmpfs -o mode=0755 troupe-images "$d"
mkdir -p "$d/tmp" "$d/registry"
export TMPDIR=$d/tmp
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rmdir /sys/fs/cgroup/*/troupe-bench-images 2>/dev/null || true
	# The daemon's image roots are unmounted with their containers; a
	# killed run may leave some: lazily, before the tmpfs goes.
	grep -o " $d/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	umount -l "$d"
	rmdir "$d"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat >"$d/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $d/registry
http:
  addr: $reg
log:
  level: error
EOF
docker-registry serve "$d/registry.yml" >"$d/registry.log" 2>&1 &
pids+=($!)
"$B" daemon --root "$d/root" --state "$d/state" --listen "unix://$d/troupe.sock" \
	--cgroup-parent /troupe-bench-images >"$d/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	[[ -S $d/troupe.sock ]] && curl -fs "http://$reg/v2/" >/dev/null && break
	sleep 0.1
done
T=("$B" --address "unix://$d/troupe.sock")

# image NAME DIR CMD...: an OCI image of the tree DIR, pushed as NAME.
image() {
	local ref=$1 dir=$2 name=${1%%:*}
	shift 2
	local cfg=() a
	for a in "$@"; do cfg+=(--config.cmd "$a"); done
	umoci init --layout "$d/oci-$name"
	umoci new --image "$d/oci-$name:x"
	umoci unpack --image "$d/oci-$name:x" "$d/b-$name" >/dev/null
	cp -a "$dir/." "$d/b-$name/rootfs/"
	umoci repack --image "$d/oci-$name:x" "$d/b-$name"
	umoci config --image "$d/oci-$name:x" --os linux --architecture amd64 "${cfg[@]}"
	skopeo copy -q --dest-tls-verify=false "oci:$d/oci-$name:x" "docker://$reg/$ref"
	rm -rf "$d/b-$name"
}

# A bundle with the spec troupe makes for an image, and an image of the
# same busybox tree: the difference is the image's overlay root and the
# work of a start from an image.
"$B" bundle --image-spec "$d/busybox" -- sleep 3600 >/dev/null
image busybox:1 "$d/busybox/rootfs" sleep 3600
mkdir -p "$d/big"
for i in 1 2 3 4; do head -c 25M /dev/urandom >"$d/big/blob$i"; done
image big:1 "$d/big" sleep 3600

echo "== $N starts at once, from a bundle and from an image, $RUNS runs ${BENCHFLAGS:-}"
# shellcheck disable=SC2086 # BENCHFLAGS is words: --warm, --density...
"${T[@]}" bench --n "$N" --runs "$RUNS" --bundle "$d/busybox" --image "$reg/busybox:1" ${BENCHFLAGS:-}

[[ ${PULL:-1} == 0 ]] && exit 0
echo "== pull and unpack 100 MB, $RUNS runs each, alternated"
for r in $(seq "$RUNS"); do
	"${T[@]}" rmi "$reg/big:1" >/dev/null 2>&1 || true
	t0=$(date +%s.%N)
	"${T[@]}" pull "$reg/big:1" >/dev/null
	t1=$(date +%s.%N)
	rm -rf "$d/pulled" "$d/unpacked"
	skopeo copy -q --src-tls-verify=false "docker://$reg/big:1" "oci:$d/pulled:big"
	umoci unpack --image "$d/pulled:big" "$d/unpacked" >/dev/null
	t2=$(date +%s.%N)
	python3 -c "a=$t1-$t0; b=$t2-$t1; print('run $r: troupe pull %.2fs, skopeo copy + umoci unpack %.2fs, troupe at %.0f%% of their time' % (a, b, 100*a/b))"
done
