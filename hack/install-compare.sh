#!/usr/bin/env bash
# hack/install-compare.sh — install the reference runtimes `troupe bench`
# compares troupe with, from Debian 12's own packages:
#
#   crun        1.8.1    (crun)
#   runc        1.1.5    (runc)
#   containerd  1.6.20   (containerd: containerd, ctr, containerd-shim-runc-v2)
#
# Usage:  sudo hack/install-compare.sh [PACKAGE ...]
#   PACKAGE   the Debian packages to ensure; default: crun runc containerd
#
# `make bench-deps` (and so `make bench`) runs it for the runtimes in
# BENCH_COMPARE. This is the only place they are installed: `troupe bench`
# itself installs nothing, and when a runtime is missing it fails with the
# package's name and this command.
#
# Idempotent: packages already installed are left alone, and with nothing to
# do it exits at once (without root). Otherwise it needs root; it runs
# `apt-get install -y --no-install-recommends` and only if that fails
# `apt-get update` and the install again. It never starts a service: the
# containerd package ships a systemd unit, but the benchmark runs a private
# containerd of its own (own root, state and socket).
set -euo pipefail

log() { printf 'install-compare: %s\n' "$*" >&2; }
die() { printf 'install-compare: ERROR: %s\n' "$*" >&2; exit 1; }

if [ "$#" -gt 0 ]; then
	packages=("$@")
else
	packages=(crun runc containerd)
fi

command -v dpkg-query >/dev/null 2>&1 ||
	die "not a Debian system; install these (or their equivalents) yourself: ${packages[*]}"

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	log "already installed: ${packages[*]}"
	exit 0
fi
[ "$(id -u)" -eq 0 ] ||
	die "missing Debian packages: ${missing[*]}; run as root (sudo $0) or: sudo apt-get install ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -o DPkg::Lock::Timeout=300)
log "installing: ${missing[*]}"
if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; then
	log "install failed; refreshing the package lists and retrying"
	"${apt[@]}" update
	"${apt[@]}" install -y --no-install-recommends "${missing[@]}"
fi

# Report what is there now, as the benchmark will use it.
crun --version 2>/dev/null | head -n 1 || true
runc --version 2>/dev/null | head -n 1 || true
containerd --version 2>/dev/null || true
