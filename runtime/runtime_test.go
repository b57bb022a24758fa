package runtime

import (
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
