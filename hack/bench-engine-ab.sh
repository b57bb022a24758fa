#!/usr/bin/env bash
# bench-engine-ab.sh compares starts of an in-process daemon
# (--engine=false) with those of a daemon running its containers in the
# embedded engine (the default): both daemons run side by side on one
# tmpfs, and `troupe bench --n N $BENCHFLAGS` runs against each in turn,
# RUNS times, 5 s apart. Root; run `make build` first.
#
#   hack/bench-engine-ab.sh            # N=1000 cold, 3 runs each
#   N=100 RUNS=5 hack/bench-engine-ab.sh
#   BENCHFLAGS='--warm --density' hack/bench-engine-ab.sh
#   BENCHFLAGS='--concurrency 10' hack/bench-engine-ab.sh
set -euo pipefail

cd "$(dirname "$0")/.."
B=$PWD/bin/troupe
N=${N:-1000}
RUNS=${RUNS:-3}
read -ra flags <<<"${BENCHFLAGS:-}"

d=$(mktemp -d /tmp/troupe-ab.XXXXXX)
mount -t tmpfs -o mode=0755 troupe-ab "$d"
mkdir -p "$d/tmp"
"$B" daemon --engine=false --root "$d/a/root" --state "$d/a/state" --listen "unix://$d/a.sock" --cgroup-parent /troupe-ab-a >"$d/a.log" 2>&1 &
pa=$!
"$B" daemon --root "$d/b/root" --state "$d/b/state" --listen "unix://$d/b.sock" --cgroup-parent /troupe-ab-b >"$d/b.log" 2>&1 &
pb=$!
cleanup() {
	kill -TERM "$pa" "$pb"
	wait "$pa" "$pb" 2>/dev/null || true
	rmdir /sys/fs/cgroup/*/troupe-ab-a /sys/fs/cgroup/*/troupe-ab-b 2>/dev/null || true
	umount "$d"
	rmdir "$d"
}
trap cleanup EXIT
for _ in $(seq 100); do
	[[ -S $d/a.sock && -S $d/b.sock ]] && break
	sleep 0.1
done
export TMPDIR=$d/tmp
for r in $(seq "$RUNS"); do
	for m in a b; do
		sleep 5
		out=$d/tmp/$m-$r.json
		"$B" --address "unix://$d/$m.sock" bench --n "$N" "${flags[@]}" --json >"$out" 2>/dev/null || echo "run $m $r failed"
		mode=in-process
		[[ $m == b ]] && mode=engine
		python3 - "$out" "$mode" "$r" <<-'EOF'
			import json, sys
			out, mode, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
			for r in json.load(open(out))['results']:
			    line = '%-10s %-12s run %d: %.1f containers/s, median %.1f ms, p99 %.1f ms, CPU/start %.2f ms (troupe\'s processes %.2f), failures %d' % (
			        mode, r['target'], run, r['containersPerSecond'], r['medianMs'], r['p99Ms'], r['cpuPerStartMs'], r['procCpuPerStartMs'], r['failures'])
			    d = r.get('density')
			    if d and not d.get('note'):
			        line += ', PSS growth %.1f KiB/container, threads %d (idle %s)' % (
			            d.get('pssGrowthPerContainerBytes', 0) / 1024, d['threads'], d.get('idleThreads'))
			    print(line)
			EOF
	done
done
