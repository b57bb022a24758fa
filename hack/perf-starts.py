#!/usr/bin/env python3
"""Where the CPU of container starts goes, from a system-wide perf profile.

Usage (root; a daemon from bin/troupe with its state on a tmpfs):

    perf record -a -g -o starts.data -- sleep 14 &
    bin/troupe --address unix://SOCK bench --n 1000      # the bench's cpu/start, e.g. 21.3
    perf script -i starts.data -F comm,pid,ip,sym,dso > starts.txt
    hack/perf-starts.py starts.txt bin/troupe DAEMON_PID 21.3

With the daemon running its containers in the engine (the default of a
make build), name the engine's binary and pid as well:

    hack/perf-starts.py starts.txt bin/troupe DAEMON_PID 21.3 bin/troupe-engine ENGINE_PID

It prints a markdown table: each process kind's share of the busy CPU
(idle left out) and, split by what its stacks show, milliseconds per start
(the share times the cpu/start given). The container init runs from a
sealed copy of the binary (or the engine's memfd) that perf cannot name,
so its addresses are resolved here with `go tool addr2line` against BINARY
(or ENGINE_BINARY).
"""
import collections
import re
import subprocess
import sys

FRAME = re.compile(r"^\s*([0-9a-f]+) (.*?) \((.*)\)$")

INIT = [
    ("package init() functions of the binary", ["runtime.doInit1"]),
    ("mounting the cgroup v1 tree inside the container", ["mountCgroupV1"]),
    ("other rootfs mounts, devices, pivot_root",
     ["prepareRootfs", "finalizeRootfs", "pivotRoot", "setupDev", "doSetupDev"]),
    ("config decode (encoding/json)", ["encoding/json."]),
    ("seccomp filter", ["seccomp"]),
    ("loopback interface", ["setupNetwork"]),
    ("exec of the container's process", ["__x64_sys_execve", "system.Exec", "unix.Exec"]),
    ("other libcontainer init", ["libcontainer."]),
    ("Go runtime start, exec and page-in of the binary", [""]),
]
DAEMON = [
    ("GC", ["runtime.gcBgMarkWorker", "runtime.gcStart"]),
    ("delete (teardown)", [".delete.func1", "(*container).Delete"]),
    ("cgroup creation and limits (10 v1 hierarchies)",
     ["cgroups/fs.(*Manager).Apply", "cgroups/fs.(*Manager).Set", "manager.New", "fs.NewManager"]),
    ("bundle load + spec conversion", ["bundle.Load", "specconv."]),
    ("re-exec of the init and sync with it (libcontainer's parent side)",
     ["newParentProcess", "parseSync", "(*initProcess).start", "exeseal"]),
    ("libcontainer create + state files", ["libcontainer.Create", "saveState", "updateState", "writeMeta"]),
    ("status checks", [".Status", "refreshState", "hasInit"]),
    ("OOM notification setup", ["(*container).OnOOM", "(*container).oomWatch"]),
    ("log pipe", ["startLogPump", "reopenReadEnd", "logPump"]),
    ("engine protocol (runtime/remote, its JSON)", ["troupe/runtime/remote"]),
    ("HTTP (net/http, gin)", ["net/http.", "gin-gonic"]),
    ("actors (protoactor, supervisor, books)", ["protoactor", "troupe/actors"]),
    ("other", [""]),
]


def read(path):
    samples, cur, who = [], None, None
    for line in open(path):
        if not line.strip():
            if cur is not None:
                samples.append((who, cur))
            cur = None
            continue
        if not line.startswith((" ", "\t")):
            parts = line.split()
            who, cur = (" ".join(parts[:-1]), parts[-1]), []
            continue
        if cur is not None:
            # "ADDR SYM (DSO)": SYM and DSO may hold spaces.
            m = FRAME.match(line)
            if m:
                cur.append((m.group(1), "(" + m.group(3) + ")", m.group(2)))
    if cur is not None:
        samples.append((who, cur))
    return samples


def unnamed(dso):
    """The dso names perf gives a sealed copy of troupe or the engine's memfd."""
    if dso == "(/troupe)":
        return "troupe"
    if "memfd:" in dso:
        return "engine"
    return None


def resolver(samples, binaries):
    # The init's (and the engine's) frames are offsets into a binary perf
    # cannot open.
    names = {}
    for which, binary in binaries.items():
        addrs = sorted({int(a, 16) for _, s in samples for a, d, _ in s if unnamed(d) == which})
        if not addrs or not binary:
            continue
        out = subprocess.run(["go", "tool", "addr2line", binary],
                             input="\n".join(hex(a + 0x400000) for a in addrs),
                             capture_output=True, text=True, check=True).stdout.split("\n")
        names.update({(which, a): out[2 * i] for i, a in enumerate(addrs)})
    return lambda s: [names.get((unnamed(d), int(a, 16)), sym) if unnamed(d) else sym for a, d, sym in s]


def classify(frames, rules):
    for label, keys in rules:
        for k in keys:
            if k == "" or any(k in f for f in frames):
                return label
    return "?"


def main():
    path, binary, daemon_pid, per_start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    engine_binary, engine_pid = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, None)
    samples = [(w, s) for w, s in read(path) if w[0] != "swapper"]
    frames = resolver(samples, {"troupe": binary, "engine": engine_binary})
    groups, detail = collections.Counter(), collections.defaultdict(collections.Counter)
    for (comm, pid), s in samples:
        if comm.startswith("runc:[2:INIT]"):
            g = "container init (Go, libcontainer)"
            detail[g][classify(frames(s), INIT)] += 1
        elif pid == daemon_pid:
            g = "daemon"
            detail[g][classify(frames(s), DAEMON)] += 1
        elif pid == engine_pid:
            g = "engine"
            detail[g][classify(frames(s), DAEMON)] += 1
        elif comm.startswith("runc:[") or comm.isdigit():
            g = "nsexec stages (C, before the init's Go runtime)"
            detail[g][comm] += 1
        elif comm == "troupe":
            g = "bench client"
        elif comm.startswith(("kworker", "ksoftirq", "rcu")):
            g = "kernel workers (cgroup setup and teardown)"
        else:
            g = "the containers' own processes and the rest"
        groups[g] += 1
    n = len(samples)
    print("| where | share of busy CPU | ms per start |")
    print("|---|---|---|")
    for g, c in groups.most_common():
        print(f"| **{g}** | {100 * c / n:.1f}% | {per_start * c / n:.2f} |")
        for k, v in detail[g].most_common():
            print(f"| &nbsp;&nbsp;{k} | {100 * v / n:.1f}% | {per_start * v / n:.2f} |")


if __name__ == "__main__":
    main()
