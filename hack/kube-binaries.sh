#!/usr/bin/env bash
# kube-binaries.sh builds the Kubernetes control plane that the tests of
# kubelet/ run against (kube-apiserver, kube-controller-manager,
# kube-scheduler, and kubectl) from the module in hack/kube-build, at the
# version its go.mod pins, into
#
#   ${TROUPE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe-kube}/<version>/
#
# and prints that directory as its last line. Binaries already there for
# that version are not built again. The directory lies outside the checkout
# so that worktrees and fresh clones share one build: a cold one takes a
# few minutes on two cores (measured: 4 and 16 minutes, cold cache).
#
# Usage: hack/kube-binaries.sh [--print-dir]
#   --print-dir  print the directory and exit, building nothing
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mod=$here/kube-build

GO=${GO:-go}
tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

# The version is the one go.mod pins, so that a bump there is a bump here.
version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$mod/go.mod")
if [[ ! $version =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]]; then
	echo "kube-binaries: no k8s.io/kubernetes release in $mod/go.mod (found '$version')" >&2
	exit 1
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}

cache=${TROUPE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe-kube}
dir=$cache/$version

if [[ ${1-} == --print-dir ]]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$dir"

# Two builds at once (two worktrees) would each take a quarter of an hour
# for the same files: the second waits for the first and then finds them.
# -o keeps the lock's descriptor out of the build's processes.
if [[ -z ${KUBE_BINARIES_LOCKED-} ]]; then
	KUBE_BINARIES_LOCKED=1 exec flock -o "$dir/.lock" "$0" "$@"
fi

missing=()
for t in "${tools[@]}"; do
	[[ -x $dir/$t ]] || missing+=("$t")
done
if [[ ${#missing[@]} -eq 0 ]]; then
	echo "kube-binaries: $version already built" >&2
	echo "$dir"
	exit 0
fi

# Without these the binaries call themselves v0.0.0-master, which kubectl
# warns about as version skew; Kubernetes' own build sets the same.
ldflags=()
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
	ldflags+=(
		"-X '$pkg.gitVersion=$version'"
		"-X '$pkg.gitMajor=$major'"
		"-X '$pkg.gitMinor=$minor'"
		"-X '$pkg.gitTreeState=clean'"
	)
done

pkgs=()
for t in "${missing[@]}"; do
	pkgs+=("k8s.io/kubernetes/cmd/$t")
done

# Into a directory of its own first, so that an interrupted build leaves no
# half-written binary that the next run would take for a built one.
out=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "kube-binaries: building ${missing[*]} $version into $dir (cold: 4 to 16 minutes on 2 cores)" >&2
start=$SECONDS
# Kubernetes builds its control plane static, without cgo.
(cd "$mod" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w ${ldflags[*]}" -o "$out/" "${pkgs[@]}")
for t in "${missing[@]}"; do
	mv "$out/$t" "$dir/$t"
done
echo "kube-binaries: built in $((SECONDS - start)) s" >&2
echo "$dir"
