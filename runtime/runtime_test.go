package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/errclass"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"redis", true},
		{"a", true},
		{"A0_b.c-d", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"", false},
		{".hidden", false},
		{"-flag", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"ü", false},
	}
	for _, tc := range tests {
		err := ValidID("container id", tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errclass.InvalidArgument) {
			t.Errorf("ValidID(%q) error is not invalid argument: %v", tc.id, err)
		}
	}
}

// TestValidIDMatchesPattern checks the hand-written check against the
// contract's pattern on many strings.
func TestValidIDMatchesPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	alphabet := "aZ09_.-/ é\x00"
	var check func(prefix string, depth int)
	check = func(prefix string, depth int) {
		if got, want := ValidID("id", prefix) == nil, pattern.MatchString(prefix); got != want {
			t.Errorf("ValidID(%q) ok=%v, pattern says %v", prefix, got, want)
		}
		if depth == 0 {
			return
		}
		for _, r := range alphabet {
			check(prefix+string(r), depth-1)
		}
	}
	check("", 3)
	for _, n := range []int{127, 128, 129} {
		id := "a" + strings.Repeat("b", n-1)
		if got, want := ValidID("id", id) == nil, pattern.MatchString(id); got != want {
			t.Errorf("length %d: ok=%v, pattern says %v", n, got, want)
		}
	}
}

func TestWithClass(t *testing.T) {
	cause := errors.New("freezer: device busy")
	err := fmt.Errorf("pause %q: %w", "web", errclass.With(errclass.FailedPrecondition, cause))
	if !errors.Is(err, errclass.FailedPrecondition) || !errors.Is(err, cause) {
		t.Errorf("%v: lost the class or the cause", err)
	}
	if errors.Is(err, errclass.NotFound) {
		t.Errorf("%v: is not found", err)
	}
	if got, want := err.Error(), `pause "web": freezer: device busy`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if errclass.With(errclass.NotFound, nil) != nil {
		t.Error("WithClass of nil is not nil")
	}
}

// TestJoinJSON: a record of a join written by a daemon that knew only
// containers' joins still reads the same, and a join of a namespace file
// writes its path alone.
func TestJoinJSON(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		join       Join
	}{
		{"a container's, as an older daemon wrote it", `{"namespace":"network","container":"sandbox","pid":42}`,
			Join{Namespace: NetworkNamespace, Container: "sandbox", Pid: 42}},
		{"a namespace file's", `{"namespace":"uts","path":"/run/netns/pod1"}`,
			Join{Namespace: UTSNamespace, Path: "/run/netns/pod1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Join
			if err := json.Unmarshal([]byte(tc.json), &got); err != nil || got != tc.join {
				t.Errorf("decoded %+v, %v; want %+v", got, err, tc.join)
			}
			if data, err := json.Marshal(tc.join); err != nil || string(data) != tc.json {
				t.Errorf("encoded %s, %v; want %s", data, err, tc.json)
			}
		})
	}
}

// TestValidJoinPath: a join of a namespace file names an absolute, clean
// path and no container; whether the file is a namespace is the runtime's
// to check at the start.
func TestValidJoinPath(t *testing.T) {
	for _, tc := range []struct {
		join Join
		ok   bool
	}{
		{Join{Namespace: NetworkNamespace, Path: "/run/netns/pod1"}, true},
		{Join{Namespace: NetworkNamespace, Path: "/nonexistent"}, true},
		{Join{Namespace: NetworkNamespace, Path: "run/netns/pod1"}, false},
		{Join{Namespace: NetworkNamespace, Path: "/run/netns/"}, false},
		{Join{Namespace: NetworkNamespace, Path: "/run/./netns/pod1"}, false},
		{Join{Namespace: NetworkNamespace, Path: "/run/netns/pod1\x00"}, false},
		{Join{Namespace: NetworkNamespace, Path: "/run/netns/pod1", Container: "sandbox", Pid: 1}, false},
		{Join{Namespace: "pid", Path: "/proc/1/ns/pid"}, false},
	} {
		err := StartOptions{BundlePath: "/b", Join: []Join{tc.join}}.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errclass.InvalidArgument)) {
			t.Errorf("Validate of %+v: %v, want ok=%v", tc.join, err, tc.ok)
		}
	}
}
