#!/usr/bin/env bash
# shellcheck disable=SC2317  # the install steps are called through step "$@"
# hack/install-criu.sh — install a CRIU that works on this machine, for troupe.
#
# A CRIU is chosen by what it does, never by its version or by `criu check`: on
# kernel 6.18.44 Debian trixie's criu 4.1.1 says "Looks good" and then hangs on
# every dump, while forky's 4.2.1 works; Debian 12's own 3.17 fails on every kernel
# >= 6.13. So the script tries Debian suites in order and keeps the first criu that
# passes a self-test: a dump and restore of a small forking process tree under a
# deadline (by default `troupe check-criu`).
#
# Each candidate is installed privately: criu and the closure of its Depends (its own
# glibc included; newer criu needs a newer glibc than the system's) are fetched with a
# PRIVATE apt configuration, unpacked with `dpkg -x` into PREFIX/suites/SUITE/root,
# and run through a wrapper named criu that execs the binary with the prefix's own
# dynamic loader. The system's apt sources, apt/dpkg state and libc are never touched.
# The only system change it may make is `apt-get install iptables` when
# iptables-restore is missing (CRIU needs it to lock the network during dumps).
#
# Usage:  sudo hack/install-criu.sh [PREFIX]
#   PREFIX                 default $CRIU_PREFIX, else /opt/troupe/criu
# Environment:
#   CRIU_PREFIX            install prefix (the first argument wins)
#   CRIU_DEBIAN_SUITES     candidate suites in the order tried (default: "forky sid
#                          trixie" and then the system's own codename, e.g. bookworm)
#   CRIU_DEBIAN_SUITE      one suite: the same as CRIU_DEBIAN_SUITES with one element
#                          (CRIU_DEBIAN_SUITES wins when both are set)
#   CRIU_SELFTEST          the self-test: a shell command line to which the candidate
#                          wrapper's path is appended as one more argument; exit 0 and
#                          a line on stdout mean CRIU works, anything else that it does
#                          not, with the reason as the last line on stderr
#                          (default: "$TROUPE check-criu --timeout $CRIU_SELFTEST_TIMEOUT")
#   CRIU_SELFTEST_TIMEOUT  deadline of the default self-test, a Go duration (default:
#                          10s); any self-test is killed after twice that plus 60s
#   TROUPE                 the troupe binary of the default self-test (default:
#                          bin/troupe of this checkout; make criu passes its own)
#   CRIU_FORCE=1           reinstall even if PREFIX/bin/criu passes the self-test
#   CRIU_DEBIAN_MIRROR     Debian mirror URI (default: the one the system's apt uses
#                          for its own release, else http://deb.debian.org/debian/)
#   CRIU_APT_KEYRING       keyring that signs the suites
#                          (default: /usr/share/keyrings/debian-archive-keyring.gpg)
#
# Layout:
#   PREFIX/bin/criu              the wrapper (give this path to troupe)
#   PREFIX/criu.chosen           the suite chosen, its criu version, when, the
#                                self-test's line and the candidates rejected before it
#   PREFIX/suites/SUITE/root/    the chosen suite's unpacked packages (root.2/ instead
#                                when the suite in use was reinstalled)
#   PREFIX/suites/SUITE/apt/     each tried suite's private apt config, lists, log and
#                                cached .debs (debs/), kept so that reruns are fast
#
# Idempotent: when PREFIX/bin/criu passes the self-test the script says "already
# installed" and exits. PREFIX/bin/criu is replaced, by a rename, only with a
# candidate that passed; a failed candidate's unpacked tree is removed at once.
set -euo pipefail

KEYRING="${CRIU_APT_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
PREFIX="${1:-${CRIU_PREFIX:-/opt/troupe/criu}}"
SELFTEST_TIMEOUT="${CRIU_SELFTEST_TIMEOUT:-10s}"

log() { printf 'install-criu: %s\n' "$*" >&2; }
die() { printf 'install-criu: ERROR: %s\n' "$*" >&2; exit 1; }

case "${PREFIX}" in
  -h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

[[ "$(id -u)" -eq 0 ]] || die "must run as root"
for c in apt-get apt-cache apt-config dpkg flock sort awk timeout mktemp; do
  command -v "$c" >/dev/null 2>&1 || die "required command not found: $c"
done

# The prefix is baked into the wrappers: keep it absolute and free of shell-special
# characters so the generated scripts need no quoting tricks.
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
CHOSEN="$PREFIX/criu.chosen"
# shellcheck disable=SC1091
CODENAME="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" || CODENAME=""

# ---- candidate suites ---------------------------------------------------------------
if [[ -n "${CRIU_DEBIAN_SUITES:-}" ]]; then
  read -r -a wanted <<<"${CRIU_DEBIAN_SUITES//,/ }"
elif [[ -n "${CRIU_DEBIAN_SUITE:-}" ]]; then
  wanted=("$CRIU_DEBIAN_SUITE")
else
  # testing, unstable, stable: the newest CRIU first, since a kernel newer than a
  # CRIU is what breaks it; the system's own release last (fine on older kernels).
  wanted=(forky sid trixie)
  [[ -z "$CODENAME" ]] || wanted+=("$CODENAME")
fi
SUITES=()
for s in "${wanted[@]}"; do
  [[ "$s" =~ ^[a-z0-9][a-z0-9.+-]*$ ]] || die "unsupported suite name: '$s'"
  [[ " ${SUITES[*]} " == *" $s "* ]] || SUITES+=("$s")
done
[[ "${#SUITES[@]}" -gt 0 ]] || die "no candidate suites (CRIU_DEBIAN_SUITES is empty)"

# ---- the self-test ------------------------------------------------------------------
if [[ -n "${CRIU_SELFTEST:-}" ]]; then
  SELFTEST="$CRIU_SELFTEST"
else
  TROUPE="${TROUPE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/troupe}"
  [[ -f "$TROUPE" && -x "$TROUPE" ]] ||
    die "build troupe first (make build): the self-test runs $TROUPE check-criu, and there is no $TROUPE"
  "$TROUPE" check-criu --help >/dev/null 2>&1 ||
    die "build troupe first (make build): $TROUPE has no check-criu command"
  SELFTEST="$(printf '%q ' "$TROUPE" check-criu --timeout "$SELFTEST_TIMEOUT")"
fi

# duration_seconds D: whole seconds (rounded up) of a Go duration such as 10s, 1m30s,
# 1500ms; fails on anything else.
duration_seconds() {
  awk -v d="$1" 'BEGIN {
    if (d !~ /^([0-9]+(\.[0-9]*)?(ns|us|ms|s|m|h))+$/) exit 1
    t = 0
    while (d != "") {
      match(d, /^[0-9]+(\.[0-9]*)?/); n = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
      if (d ~ /^ns/) { f = 1e-9; k = 2 } else if (d ~ /^us/) { f = 1e-6; k = 2 }
      else if (d ~ /^ms/) { f = 1e-3; k = 2 } else if (d ~ /^s/) { f = 1; k = 1 }
      else if (d ~ /^m/) { f = 60; k = 1 } else { f = 3600; k = 1 }
      t += n * f; d = substr(d, k + 1)
    }
    s = int(t); if (s < t) s++; print s
  }'
}
# A self-test has its own deadline; this one only keeps a broken self-test from
# hanging the install.
if t="$(duration_seconds "$SELFTEST_TIMEOUT")"; then GUARD=$((2 * t + 60)); else GUARD=600; fi

TMPD="$(mktemp -d)"
trap 'rm -rf "$TMPD"' EXIT

last_line() { awk 'NF { l = $0 } END { print l }' "$1"; }

# selftest CRIU: runs the self-test on the wrapper CRIU. True when it passed; sets
# ST_LINE to its line on stdout, or ST_REASON to why CRIU does not work.
ST_LINE="" ST_REASON=""
selftest() {
  local rc=0 t0=$SECONDS
  ST_LINE="" ST_REASON=""
  timeout -k 10 "$GUARD" bash -c "$SELFTEST"' "$@"' criu-selftest "$1" \
    </dev/null >"$TMPD/selftest.out" 2>"$TMPD/selftest.err" 9>&- || rc=$?
  if [[ "$rc" -eq 0 ]]; then
    ST_LINE="$(last_line "$TMPD/selftest.out")"
    ST_LINE="${ST_LINE:-the self-test passed (it printed nothing)}"
    return 0
  fi
  if [[ "$rc" -eq 124 || "$rc" -eq 137 ]] && (( SECONDS - t0 >= GUARD )); then
    ST_REASON="the self-test did not finish within ${GUARD}s and was killed"
    return 1
  fi
  ST_REASON="$(last_line "$TMPD/selftest.err")"
  [[ -n "$ST_REASON" ]] || ST_REASON="$(last_line "$TMPD/selftest.out")"
  ST_REASON="${ST_REASON:-the self-test failed (exit status $rc) and said nothing}"
  if [[ "$(awk 'NF' "$TMPD/selftest.err" | wc -l)" -gt 1 ]]; then
    log "self-test output on stderr:"
    sed 's/^/    /' "$TMPD/selftest.err" >&2
  fi
  return 1
}

# chosen_field KEY: the value of "KEY: value" in PREFIX/criu.chosen, if any.
chosen_field() {
  [[ -r "$CHOSEN" ]] || return 0
  awk -v k="$1: " 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }' "$CHOSEN"
}

# report LINE: the result on stdout.
report() {
  local suite version
  suite="$(chosen_field suite)" version="$(chosen_field version)"
  echo "criu wrapper: $WRAPPER"
  [[ -z "$suite" ]] || echo "criu suite: $suite (criu ${version:-?})"
  echo "criu self-test: $1"
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
  if ! apt-get install -y -q --no-install-recommends iptables 9>&-; then
    log "install failed; refreshing the system's package lists and retrying"
    apt-get update -q 9>&-
    apt-get install -y -q --no-install-recommends iptables 9>&-
  fi
  have_iptables_restore || die "iptables-restore still missing after installing iptables"
}

mkdir -p "$PREFIX"
exec 9>"$PREFIX/.install.lock"
flock 9

ensure_iptables

# ---- fast path: already installed and working ---------------------------------------
if [[ "${CRIU_FORCE:-0}" != 1 && -x "$WRAPPER" ]]; then
  if selftest "$WRAPPER"; then
    log "already installed: $WRAPPER: $ST_LINE"
    report "$ST_LINE"
    exit 0
  fi
  log "$WRAPPER fails the self-test ($ST_REASON); reinstalling"
fi

[[ -r "$KEYRING" ]] || die "keyring $KEYRING not found (apt-get install debian-archive-keyring)"

# Mirror: the one the system's apt uses for its own Debian release (same host and
# scheme, so it is reachable from here), unless overridden.
MIRROR="${CRIU_DEBIAN_MIRROR:-}"
if [[ -z "$MIRROR" && -n "$CODENAME" ]]; then
  # shellcheck disable=SC2016  # apt's own $(...) placeholders
  MIRROR="$(apt-get indextargets --no-release-info \
      --format '$(TARGET_OF) $(RELEASE) $(REPO_URI)' 2>/dev/null |
    awk -v r="$CODENAME" '$1 == "deb" && $2 == r {print $3; exit}')" || MIRROR=""
fi
MIRROR="${MIRROR:-http://deb.debian.org/debian/}"

# ---- one candidate ------------------------------------------------------------------
# The steps below run in a subshell each (see step), with errexit on: cfail ends the
# step with a reason for the log, any other failing command ends it too.
SUITE="" APTDIR="" DEBS=""

cfail() { printf '%s\n' "$*" >"$TMPD/reason"; exit 1; }

# step FN ARGS...: runs FN in a subshell with errexit and sets STEP_RC to its exit
# status. Call it as a plain command: in a condition (if, ||, &&) bash would ignore
# errexit inside, even where set -e turns it on again.
STEP_RC=0
step() {
  rm -f "$TMPD/reason"
  set +e
  ( set -e; "$@" )
  STEP_RC=$?
  set -e
}

# step_reason: why the last step failed.
step_reason() {
  if [[ -s "$TMPD/reason" ]]; then cat "$TMPD/reason"; else echo "installing it failed (exit status $STEP_RC; see above)"; fi
}

papt() { APT_CONFIG="$APTDIR/etc/apt.conf" "$@" 9>&-; }

# setup_apt: the private apt configuration of $SUITE in $APTDIR.
setup_apt() {
  mkdir -p "$APTDIR/etc/apt.conf.d" "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" \
           "$APTDIR/etc/trusted.gpg.d" "$APTDIR/state/lists/partial" \
           "$APTDIR/cache/archives/partial" "$DEBS"
  [[ -e "$APTDIR/state/status" ]] || : >"$APTDIR/state/status"   # empty dpkg status: nothing "installed"

  echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$APTDIR/etc/sources.list"

  # Network settings (proxies, Check-Valid-Until for snapshot mirrors, retries...) are
  # taken from the system's apt configuration; nothing else from /etc/apt is read, so
  # none of its hooks (e.g. APT::Update::Post-Invoke) run against the private lists.
  apt-config dump 2>/dev/null | grep '^Acquire::' | grep -v '^Acquire::IndexTargets' \
    >"$APTDIR/etc/apt.conf.d/10system-acquire.conf" || true

  local sandbox_user=_apt
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
}

# lists: fresh private lists of $SUITE; writes its criu version to $TMPD/version.
lists() {
  setup_apt
  log "$SUITE: updating private package lists ($MIRROR $SUITE)"
  if ! papt apt-get update -q >"$APTDIR/update.log" 2>&1 ||
     grep -q '^\(E\|W\): .*\(NO_PUBKEY\|not signed\|Failed\)' "$APTDIR/update.log"; then
    sed 's/^/    /' "$APTDIR/update.log" >&2
    if compgen -G "$APTDIR/state/lists/*Packages*" >/dev/null; then
      log "$SUITE: WARNING: apt-get update failed; continuing with the lists fetched earlier"
    else
      cfail "apt-get update of the private $SUITE sources failed: $(grep -m1 '^E:' "$APTDIR/update.log" || last_line "$APTDIR/update.log")"
    fi
  fi
  local v
  v="$(papt apt-cache show --no-all-versions criu 2>/dev/null | awk '/^Version:/ {print $2; exit}')" || v=""
  [[ -n "$v" ]] || cfail "$SUITE has no criu package for $(dpkg --print-architecture)"
  echo "$v" >"$TMPD/version"
}

libpath() { echo "$1/usr/lib/$TRIPLET:$1/lib/$TRIPLET:/usr/lib/$TRIPLET:/lib/$TRIPLET"; }

find_ldso() {
  local r="$1" d
  for d in usr/lib/$TRIPLET lib/$TRIPLET usr/lib64 lib64; do
    [[ -e "$r/$d/$LDSO" ]] && { echo "$d/$LDSO"; return 0; }
  done
  return 1
}

# write_wrapper ROOT LDSO_REL OUT: the wrapper OUT running ROOT's criu.
write_wrapper() {
  local root="$1" ldso_rel="$2" out="$3"
  mkdir -p "${out%/*}"
  cat >"$out.tmp" <<EOF
#!/bin/sh
# criu wrapper written by hack/install-criu.sh: runs Debian $SUITE's criu with its own
# glibc and libraries from $root, without touching the system's libc.
# CRIU runs iptables-restore from PATH; make sure the sbin dirs are on it.
case ":\${PATH:-}:" in
  *:/usr/sbin:*) ;;
  *) PATH="\${PATH:-/usr/local/bin:/usr/bin:/bin}:/usr/sbin:/sbin"; export PATH ;;
esac
exec $root/$ldso_rel --argv0 "\$0" \\
  --library-path $(libpath "$root") \\
  $root/usr/sbin/criu "\$@"
EOF
  chmod 0755 "$out.tmp"
  mv -f "$out.tmp" "$out"
}

# unpack ROOT OUT: fetches $SUITE's criu and the closure of its Depends (all shared
# libraries, libc6 included, so the binary only ever loads libraries from ROOT and
# does not depend on which libraries the host has), unpacks them into a fresh ROOT
# and writes the candidate wrapper OUT.
unpack() {
  local root="$1" out="$2" t="$TMPD/$SUITE" p f g keep missing ldso_rel
  local -a pkgs files
  mapfile -t pkgs < <(papt apt-cache depends --recurse --no-recommends --no-suggests \
      --no-conflicts --no-breaks --no-replaces --no-enhances criu 2>/dev/null |
    grep -v -e '^ ' -e '^<' | sort -u)
  [[ " ${pkgs[*]} " == *" criu "* && " ${pkgs[*]} " == *" libc6 "* ]] ||
    cfail "could not resolve criu's dependencies in $SUITE (got: ${pkgs[*]:-nothing})"
  local -a other=()
  for p in "${pkgs[@]}"; do
    [[ "$p" == criu || "$p" == lib* || "$p" == gcc-*-base ]] || other+=("$p")
  done
  [[ "${#other[@]}" -eq 0 ]] || log "$SUITE: note: dependencies that are no libraries (unpacked too): ${other[*]}"
  log "$SUITE: packages (${#pkgs[@]}): ${pkgs[*]}"

  # Expected file names (asked in an empty dir: apt prints nothing for files it has).
  mkdir -p "$t"
  (cd "$t" && papt apt-get download --print-uris "${pkgs[@]}") >"$t/uris" 2>"$t/err" ||
    { cat "$t/err" >&2; cfail "apt-get download --print-uris failed in $SUITE"; }
  mapfile -t files < <(awk '{print $2}' "$t/uris")
  [[ "${#files[@]}" -eq "${#pkgs[@]}" ]] || cfail "expected ${#pkgs[@]} .deb names in $SUITE, got ${#files[@]}"

  # Download into the suite's cache; apt skips files already there with the right hash.
  (cd "$DEBS" && papt apt-get download -q "${pkgs[@]}") >"$t/dl" 2>&1 ||
    { cat "$t/dl" >&2; cfail "apt-get download from $SUITE failed: $(grep -m1 '^E:' "$t/dl" || last_line "$t/dl")"; }
  grep -h '^Fetched' "$t/dl" | sed "s/^/install-criu: $SUITE: /" >&2 ||
    log "$SUITE: all ${#files[@]} .debs already in the cache"
  # Drop cached .debs of other versions.
  for f in "$DEBS"/*.deb; do
    [[ -e "$f" ]] || continue
    keep=0
    for g in "${files[@]}"; do [[ "${f##*/}" == "$g" ]] && keep=1 && break; done
    [[ "$keep" == 1 ]] || { log "$SUITE: removing stale ${f##*/}"; rm -f "$f"; }
  done

  rm -rf "$root"
  mkdir -p "$root"
  for f in "${files[@]}"; do
    dpkg -x "$DEBS/$f" "$root"
  done
  printf '%s\n' "${files[@]}" >"$root/.troupe-packages"

  ldso_rel="$(find_ldso "$root")" || cfail "$LDSO not found in $SUITE's libc6"
  [[ -x "$root/usr/sbin/criu" ]] || cfail "usr/sbin/criu not found in $SUITE's criu package"
  # Every library must resolve (the loader's --list is ldd without the host's ldd).
  missing="$("$root/$ldso_rel" --library-path "$(libpath "$root")" --list \
    "$root/usr/sbin/criu" 2>&1 | grep 'not found' || true)"
  [[ -z "$missing" ]] || cfail "unresolved libraries for $SUITE's criu: $(tr -s ' \t\n' ' ' <<<"$missing")"

  write_wrapper "$root" "$ldso_rel" "$out"
}

# cleanup: after a new wrapper was put in place, removes what it does not use: the
# unpacked trees of other suites and of the one replaced, stale candidate wrappers,
# and the single-suite layout of earlier versions of this script (PREFIX/root,
# PREFIX/apt).
cleanup() {
  local d
  for d in "$PREFIX"/suites/*/root "$PREFIX"/suites/*/root.2 "$PREFIX/root" "$PREFIX/root.new" "$PREFIX/root.old"; do
    [[ -d "$d" ]] || continue
    grep -qF "$d/" "$WRAPPER" && continue
    log "removing $d (not used by $WRAPPER)"
    rm -rf "$d"
  done
  if [[ -f "$PREFIX/apt/etc/apt.conf" ]]; then
    log "removing $PREFIX/apt (the layout of an earlier install-criu.sh)"
    rm -rf "$PREFIX/apt"
  fi
  rm -f "$PREFIX"/suites/*/bin/criu "$PREFIX"/suites/*/bin/criu.tmp "$WRAPPER.tmp" "$CHOSEN.tmp"
  rmdir "$PREFIX"/suites/*/bin 2>/dev/null || true
}

# ---- try the candidates in order ----------------------------------------------------
declare -A FAILED_IN=()   # criu package version -> suite where it failed the self-test
REJECTED=()
reject() {
  REJECTED+=("$1: $2")
  log "$1: rejected: $2"
}
rejected() { local r out=""; for r in "${REJECTED[@]}"; do out+="${out:+; }$r"; done; echo "$out"; }

log "candidate suites, in order: ${SUITES[*]}; self-test: ${SELFTEST% } <criu>"
for SUITE in "${SUITES[@]}"; do
  APTDIR="$PREFIX/suites/$SUITE/apt"
  DEBS="$APTDIR/debs"
  rm -f "$TMPD/version"
  step lists
  if [[ "$STEP_RC" -ne 0 ]]; then reject "$SUITE" "$(step_reason)"; continue; fi
  version="$(cat "$TMPD/version")"
  if [[ -n "${FAILED_IN[$version]:-}" ]]; then
    reject "$SUITE" "criu $version, the same version failed in ${FAILED_IN[$version]} (skipped)"
    continue
  fi

  # A fresh tree for the candidate. When PREFIX/bin/criu runs this suite's tree (a
  # reinstall), the other of root and root.2 is used, so that the install in use
  # stays whole until its replacement passed.
  root="$PREFIX/suites/$SUITE/root"
  if [[ -f "$WRAPPER" ]] && grep -qF "$root/" "$WRAPPER"; then root="$root.2"; fi
  cand="$PREFIX/suites/$SUITE/bin/criu"   # named criu: libcontainer runs "criu"

  step unpack "$root" "$cand"
  if [[ "$STEP_RC" -ne 0 ]]; then
    reject "$SUITE" "criu $version: $(step_reason)"
    rm -rf "$root" "$cand" "$cand.tmp"
    continue
  fi

  log "$SUITE: self-testing criu $version ($cand)"
  t0=$SECONDS
  if ! selftest "$cand"; then
    reject "$SUITE" "criu $version: $ST_REASON"
    FAILED_IN[$version]="$SUITE"
    rm -rf "$root" "$cand"
    continue
  fi
  log "$SUITE: passed in $((SECONDS - t0))s: $ST_LINE"

  # Passed: it becomes THE wrapper, by a rename (same filesystem: atomic).
  {
    echo "suite: $SUITE"
    echo "version: $version"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "self-test: $ST_LINE"
    echo "root: $root"
    for r in "${REJECTED[@]}"; do echo "rejected: $r"; done
  } >"$CHOSEN.tmp"
  mkdir -p "$PREFIX/bin"
  mv -f "$cand" "$WRAPPER"
  mv -f "$CHOSEN.tmp" "$CHOSEN"
  cleanup
  if [[ "${#REJECTED[@]}" -gt 0 ]]; then
    log "chose $SUITE (criu $version) after rejecting: $(rejected)"
  else
    log "chose $SUITE (criu $version)"
  fi
  log "installed $WRAPPER in ${SECONDS}s"
  report "$ST_LINE"
  exit 0
done

rmdir "$PREFIX"/suites/*/bin 2>/dev/null || true
if [[ -e "$WRAPPER" ]]; then kept="$WRAPPER left as it was"; else kept="nothing installed"; fi
die "no candidate CRIU passed the self-test ($kept): $(rejected)"
