#!/usr/bin/env bash
# hack/install-criu.sh — install a working CRIU (>= 4.1) for troupe on Debian 12.
#
# Debian 12's criu 3.17 fails on kernels >= 6.13 (split vDSO: "Unexpected rt vDSO
# area bounds"). Debian 13's criu 4.1.x works but needs glibc >= 2.38, so it must not
# be installed over the system's libc. Instead this script fetches trixie's criu and
# the shared libraries it needs (including trixie's libc6) with a PRIVATE apt
# configuration, unpacks them with `dpkg -x` into a private prefix, and writes a
# wrapper `criu` that runs the binary through the prefix's own dynamic loader.
# The system's apt sources, apt/dpkg state and libc are never touched. The only
# system change it may make is `apt-get install iptables` when iptables-restore is
# missing (CRIU needs it to lock the network during dumps).
#
# Usage:  sudo hack/install-criu.sh [PREFIX]
#   PREFIX               default $CRIU_PREFIX, else /opt/troupe/criu
# Environment:
#   CRIU_PREFIX          install prefix (the first argument wins)
#   CRIU_FORCE=1         reinstall even if a working criu is already there
#   CRIU_DEBIAN_MIRROR   Debian mirror URI (default: the one the system's apt uses
#                        for its own release, else http://deb.debian.org/debian/)
#   CRIU_DEBIAN_SUITE    suite to take criu from (default: trixie)
#   CRIU_APT_KEYRING     keyring that signs that suite
#                        (default: /usr/share/keyrings/debian-archive-keyring.gpg)
#
# Layout:
#   $PREFIX/bin/criu     the wrapper (give this path to troupe / libcontainer)
#   $PREFIX/root/        the unpacked packages (usr/sbin/criu, usr/lib/<triplet>/...)
#   $PREFIX/apt/         private apt config (etc/), state (lists), cache (debs/)
#
# Idempotent: a rerun with a working install exits quickly ("already installed");
# otherwise downloaded .debs are reused from $PREFIX/apt/debs when their hash matches.
set -euo pipefail

MIN_VERSION=4.1
SUITE="${CRIU_DEBIAN_SUITE:-trixie}"
KEYRING="${CRIU_APT_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
PREFIX="${1:-${CRIU_PREFIX:-/opt/troupe/criu}}"

log() { printf 'install-criu: %s\n' "$*" >&2; }
die() { printf 'install-criu: ERROR: %s\n' "$*" >&2; exit 1; }

case "${PREFIX}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

[[ "$(id -u)" -eq 0 ]] || die "must run as root"
for c in apt-get apt-cache apt-config dpkg flock sha256sum sort awk; do
  command -v "$c" >/dev/null 2>&1 || die "required command not found: $c"
done

# The prefix is baked into the wrapper: keep it absolute and free of shell-special
# characters so the generated script needs no quoting tricks.
[[ "$PREFIX" == /* ]] || PREFIX="$(pwd)/$PREFIX"
PREFIX="${PREFIX%/}"
[[ "$PREFIX" =~ ^/[A-Za-z0-9/._+-]+$ ]] || die "unsupported prefix (use [A-Za-z0-9/._+-] only): $PREFIX"
[[ "$PREFIX" != "/" && "$PREFIX" != "/usr" && "$PREFIX" != "/opt" ]] || die "refusing prefix $PREFIX"

case "$(dpkg --print-architecture)" in
  amd64) TRIPLET=x86_64-linux-gnu;  LDSO=ld-linux-x86-64.so.2 ;;
  arm64) TRIPLET=aarch64-linux-gnu; LDSO=ld-linux-aarch64.so.1 ;;
  *) die "unsupported architecture $(dpkg --print-architecture)" ;;
esac

WRAPPER="$PREFIX/bin/criu"
ROOT="$PREFIX/root"
APTDIR="$PREFIX/apt"
DEBS="$APTDIR/debs"

# version_ge A B: true when version A >= B.
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

# criu_version BIN: prints the "Version:" field of `BIN --version`, or nothing.
criu_version() { "$@" --version 2>/dev/null | awk '/^Version:/ {print $2; exit}' || true; }

# criu_check BIN...: runs `criu check`; sets CHECK_OUT; true when it says "Looks good".
CHECK_OUT=""
criu_check() {
  CHECK_OUT="$("$@" check 2>&1)" || true
  grep -q '^Looks good' <<<"$CHECK_OUT"
}

have_iptables_restore() {
  command -v iptables-restore >/dev/null 2>&1 ||
    [[ -x /usr/sbin/iptables-restore || -x /sbin/iptables-restore ]]
}

# CRIU runs iptables-restore to lock the network while dumping; without it dumps fail
# with "Locking network failed". Debian 12's iptables package is fine.
ensure_iptables() {
  have_iptables_restore && return 0
  log "iptables-restore not found; installing Debian's iptables package (system apt)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends iptables; then
    log "install failed; refreshing the system's package lists and retrying"
    apt-get update -q
    apt-get install -y -q --no-install-recommends iptables
  fi
  have_iptables_restore || die "iptables-restore still missing after installing iptables"
}

mkdir -p "$PREFIX"
exec 9>"$PREFIX/.install.lock"
flock 9

ensure_iptables

# ---- fast path: already installed and working --------------------------------------
if [[ "${CRIU_FORCE:-0}" != 1 && -x "$WRAPPER" ]]; then
  v="$(criu_version "$WRAPPER")"
  if [[ -n "$v" ]] && version_ge "$v" "$MIN_VERSION" && criu_check "$WRAPPER"; then
    log "already installed: $WRAPPER (criu $v, criu check: $(grep '^Looks good' <<<"$CHECK_OUT"))"
    echo "criu wrapper: $WRAPPER"
    echo "criu version: $v"
    exit 0
  fi
  log "existing install at $PREFIX is not usable (version '${v:-?}'); reinstalling"
fi

# ---- private apt configuration ------------------------------------------------------
mkdir -p "$APTDIR/etc/apt.conf.d" "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" \
         "$APTDIR/etc/trusted.gpg.d" "$APTDIR/state/lists/partial" \
         "$APTDIR/cache/archives/partial" "$DEBS"
[[ -e "$APTDIR/state/status" ]] || : >"$APTDIR/state/status"   # empty dpkg status: nothing "installed"
[[ -r "$KEYRING" ]] || die "keyring $KEYRING not found (apt-get install debian-archive-keyring)"

# Mirror: the one the system's apt uses for its own Debian release (same host and
# scheme, so it is reachable from here), unless overridden.
if [[ -z "${CRIU_DEBIAN_MIRROR:-}" ]]; then
  codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" || codename=""
  if [[ -n "$codename" ]]; then
    CRIU_DEBIAN_MIRROR="$(apt-get indextargets --no-release-info \
        --format '$(TARGET_OF) $(RELEASE) $(REPO_URI)' 2>/dev/null |
      awk -v r="$codename" '$1 == "deb" && $2 == r {print $3; exit}')" || CRIU_DEBIAN_MIRROR=""
  fi
  CRIU_DEBIAN_MIRROR="${CRIU_DEBIAN_MIRROR:-http://deb.debian.org/debian/}"
fi

echo "deb [signed-by=$KEYRING] $CRIU_DEBIAN_MIRROR $SUITE main" >"$APTDIR/etc/sources.list"

# Network settings (proxies, Check-Valid-Until for snapshot mirrors, retries...) are
# taken from the system's apt configuration; nothing else from /etc/apt is read, so
# none of its hooks (e.g. APT::Update::Post-Invoke) run against the private lists.
apt-config dump 2>/dev/null | grep '^Acquire::' | grep -v '^Acquire::IndexTargets' \
  >"$APTDIR/etc/apt.conf.d/10system-acquire.conf" || true

sandbox_user=_apt
if id _apt >/dev/null 2>&1; then
  chown _apt:root "$DEBS"   # apt downloads as _apt into the cwd
else
  sandbox_user=root
fi

cat >"$APTDIR/etc/apt.conf" <<EOF
// Private apt configuration written by hack/install-criu.sh; used via APT_CONFIG.
Dir::Etc::main "/dev/null";
Dir::Etc::parts "$APTDIR/etc/apt.conf.d";
Dir::Etc::sourcelist "$APTDIR/etc/sources.list";
Dir::Etc::sourceparts "$APTDIR/etc/sources.list.d";
Dir::Etc::preferences "$APTDIR/etc/preferences";
Dir::Etc::preferencesparts "$APTDIR/etc/preferences.d";
Dir::Etc::trusted "$APTDIR/etc/trusted.gpg";
Dir::Etc::trustedparts "$APTDIR/etc/trusted.gpg.d";
Dir::State "$APTDIR/state";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
Dir::Cache::srcpkgcache "";
Dir::Log "$APTDIR/log";
APT::Sandbox::User "$sandbox_user";
APT::Get::AllowUnauthenticated "false";
EOF

papt() { APT_CONFIG="$APTDIR/etc/apt.conf" "$@"; }

log "updating private package lists ($CRIU_DEBIAN_MIRROR $SUITE)"
if ! papt apt-get update -q >"$APTDIR/update.log" 2>&1 || grep -q '^\(E\|W\): .*\(NO_PUBKEY\|not signed\|Failed\)' "$APTDIR/update.log"; then
  cat "$APTDIR/update.log" >&2
  if compgen -G "$APTDIR/state/lists/*Packages*" >/dev/null; then
    log "WARNING: apt-get update failed; continuing with the lists fetched earlier"
  else
    die "apt-get update of the private $SUITE sources failed (see above)"
  fi
fi

# Packages: criu and the closure of its Depends in $SUITE (all shared libraries,
# libc6 included), so the binary only ever loads libraries from the prefix and does
# not depend on which libraries the host happens to have.
mapfile -t PKGS < <(papt apt-cache depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances criu 2>/dev/null |
  grep -v -e '^ ' -e '^<' | sort -u)
[[ " ${PKGS[*]} " == *" criu "* && " ${PKGS[*]} " == *" libc6 "* ]] ||
  die "could not resolve criu's dependencies in $SUITE (got: ${PKGS[*]:-nothing})"
for p in "${PKGS[@]}"; do
  [[ "$p" == criu || "$p" == lib* || "$p" == gcc-*-base ]] ||
    log "note: unexpected non-library dependency '$p' (unpacked too)"
done
log "packages (${#PKGS[@]}): ${PKGS[*]}"

# Expected file names (asked in an empty dir: apt prints nothing for files it has).
tmpd="$(mktemp -d)"
trap 'rm -rf "$tmpd"' EXIT
(cd "$tmpd" && papt apt-get download --print-uris "${PKGS[@]}") >"$tmpd/uris" 2>"$tmpd/err" ||
  { cat "$tmpd/err" >&2; die "apt-get download --print-uris failed"; }
mapfile -t FILES < <(awk '{print $2}' "$tmpd/uris")
[[ "${#FILES[@]}" -eq "${#PKGS[@]}" ]] || die "expected ${#PKGS[@]} .deb names, got ${#FILES[@]}"

# Download into the cache; apt skips files already there with the right hash.
(cd "$DEBS" && papt apt-get download -q "${PKGS[@]}") >"$tmpd/dl" 2>&1 ||
  { cat "$tmpd/dl" >&2; die "apt-get download failed"; }
grep -h '^Fetched' "$tmpd/dl" >&2 || log "all ${#FILES[@]} .debs already in the cache"
# Drop cached .debs of other versions.
for f in "$DEBS"/*.deb; do
  [[ -e "$f" ]] || continue
  keep=0
  for g in "${FILES[@]}"; do [[ "${f##*/}" == "$g" ]] && keep=1 && break; done
  [[ "$keep" == 1 ]] || { log "removing stale ${f##*/}"; rm -f "$f"; }
done

# ---- unpack into a fresh tree, verify it, then swap it in ---------------------------
rm -rf "$ROOT.new" "$ROOT.old"
mkdir -p "$ROOT.new"
for f in "${FILES[@]}"; do
  dpkg -x "$DEBS/$f" "$ROOT.new"
done
printf '%s\n' "${FILES[@]}" >"$ROOT.new/.troupe-packages"

find_ldso() {
  local r="$1" d
  for d in usr/lib/$TRIPLET lib/$TRIPLET usr/lib64 lib64; do
    [[ -e "$r/$d/$LDSO" ]] && { echo "$d/$LDSO"; return 0; }
  done
  return 1
}
LDSO_REL="$(find_ldso "$ROOT.new")" || die "$LDSO not found in the unpacked libc6"
[[ -x "$ROOT.new/usr/sbin/criu" ]] || die "usr/sbin/criu not found in the unpacked criu package"
libpath() { echo "$1/usr/lib/$TRIPLET:$1/lib/$TRIPLET:/usr/lib/$TRIPLET:/lib/$TRIPLET"; }

# Every library must resolve (the loader's --list is ldd without the host's ldd).
missing="$("$ROOT.new/$LDSO_REL" --library-path "$(libpath "$ROOT.new")" --list \
  "$ROOT.new/usr/sbin/criu" 2>&1 | grep 'not found' || true)"
[[ -z "$missing" ]] || die "unresolved libraries for criu:"$'\n'"$missing"

if [[ -d "$ROOT" ]]; then mv "$ROOT" "$ROOT.old"; fi
mv "$ROOT.new" "$ROOT"
rm -rf "$ROOT.old"

# ---- wrapper ------------------------------------------------------------------------
mkdir -p "$PREFIX/bin"
cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# criu wrapper written by hack/install-criu.sh: runs Debian $SUITE's criu with its own
# glibc and libraries from $ROOT, without touching the system's libc.
# CRIU runs iptables-restore from PATH; make sure the sbin dirs are on it.
case ":\${PATH:-}:" in
  *:/usr/sbin:*) ;;
  *) PATH="\${PATH:-/usr/local/bin:/usr/bin:/bin}:/usr/sbin:/sbin"; export PATH ;;
esac
exec $ROOT/$LDSO_REL --argv0 "\$0" \\
  --library-path $(libpath "$ROOT") \\
  $ROOT/usr/sbin/criu "\$@"
EOF
chmod 0755 "$WRAPPER.tmp"
mv -f "$WRAPPER.tmp" "$WRAPPER"

# ---- verify -------------------------------------------------------------------------
v="$(criu_version "$WRAPPER")"
[[ -n "$v" ]] || die "$WRAPPER --version printed no version: $("$WRAPPER" --version 2>&1 || true)"
version_ge "$v" "$MIN_VERSION" || die "criu $v is older than $MIN_VERSION"
if ! criu_check "$WRAPPER"; then
  printf '%s\n' "$CHECK_OUT" >&2
  die "'$WRAPPER check' did not say \"Looks good.\" — CRIU cannot checkpoint on this host"
fi
log "criu check: $(grep '^Looks good' <<<"$CHECK_OUT")"
echo "criu wrapper: $WRAPPER"
echo "criu version: $v"
