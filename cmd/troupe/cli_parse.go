package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/troupe-run/troupe/api"
	"golang.org/x/sys/unix"
)

// maxSignal is the highest signal number Linux has (SIGRTMAX).
const maxSignal = 64

// parseSignal reads a signal as a number ("9") or a name, with or without
// the SIG prefix, in any case ("KILL", "sigterm").
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > maxSignal {
			return 0, fmt.Errorf("signal %d out of range 0-%d", n, maxSignal)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return int(sig), nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// sizeUnits are the suffixes parseSize knows, powers of 1024 as in docker's
// --memory ("m" and "mb" are both MiB).
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// parseSize reads a size in bytes: a number with an optional unit ("64m",
// "1.5g", "512KiB", "1048576"), or -1 for no limit.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "-1" {
		return -1, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (k, m, g, t), or -1", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (k, m, g, t), or -1", s)
	}
	v := math.Floor(f * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// parseUser reads UID[:GID], both numbers (the client cannot look names up
// in the container's /etc/passwd). The gid defaults to 0, as docker does for
// a uid without a passwd entry.
func parseUser(s string) (api.User, error) {
	uidText, gidText, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidText, 10, 31)
	if err != nil {
		return api.User{}, fmt.Errorf("user %q: want UID[:GID], numbers", s)
	}
	var gid uint64
	if hasGID {
		if gid, err = strconv.ParseUint(gidText, 10, 31); err != nil {
			return api.User{}, fmt.Errorf("user %q: want UID[:GID], numbers", s)
		}
	}
	return api.User{UID: int(uid), GID: int(gid)}, nil
}

// checkEnv checks that every entry is KEY=value with a key.
func checkEnv(env []string) error {
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("env %q: want KEY=value", e)
		}
	}
	return nil
}
