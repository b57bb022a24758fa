package runtime

import (
	"errors"
	"fmt"
	"strings"
	"testing"
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
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidID(%q) error is not invalid argument: %v", tc.id, err)
		}
	}
}

func TestWithClass(t *testing.T) {
	cause := errors.New("freezer: device busy")
	err := fmt.Errorf("pause %q: %w", "web", WithClass(ErrFailedPrecondition, cause))
	if !errors.Is(err, ErrFailedPrecondition) || !errors.Is(err, cause) {
		t.Errorf("%v: lost the class or the cause", err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Errorf("%v: is not found", err)
	}
	if got, want := err.Error(), `pause "web": freezer: device busy`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if WithClass(ErrNotFound, nil) != nil {
		t.Error("WithClass of nil is not nil")
	}
}
