package criu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/troupe-run/troupe/errclass"
)

// The states of a Checker's verdict.
const (
	Checking = "checking"
	Passed   = "passed"
	Failed   = "failed"
)

// Verdict is what a self-test found. The API shows it as api.CriuVerdict
// (GET /healthz, GET /version).
type Verdict struct {
	// Status is Checking, Passed or Failed.
	Status string
	// Path is the criu binary tested.
	Path string
	// Version is CRIU's own version, once known.
	Version string
	// Error says why CRIU cannot be used, when it failed.
	Error string
	// Took is how long the self-test ran, once it ended.
	Took string
}

// Checker holds the verdict of a self-test that runs in the background.
// Its methods are safe for concurrent use.
type Checker struct {
	verdict atomic.Pointer[Verdict]
	err     atomic.Pointer[error]
	done    chan struct{}
}

// Check makes path the criu that libcontainer runs (see Use) and self-tests
// it in the background within timeout. Until the test has passed, Err
// answers why checkpoints cannot be taken.
func Check(path string, timeout time.Duration) *Checker {
	c := &Checker{done: make(chan struct{})}
	c.set(Verdict{Status: Checking, Path: path},
		fmt.Errorf("checkpoint/restore is not available yet: the self-test of CRIU (%s) is still running: %w", path, errclass.Unavailable))
	go func() {
		defer close(c.done)
		full, err := Use(path)
		if err != nil {
			c.set(Verdict{Status: Failed, Path: path, Error: err.Error()},
				fmt.Errorf("checkpoint/restore is not available: %w", errclass.With(errclass.Unavailable, err)))
			return
		}
		t0 := time.Now()
		version, err := SelfTest(context.Background(), full, timeout)
		v := Verdict{Status: Passed, Path: full, Version: version, Took: time.Since(t0).Round(time.Millisecond).String()}
		if err != nil {
			v.Status, v.Error = Failed, err.Error()
			c.set(v, fmt.Errorf("checkpoint/restore is not available: %w", errclass.With(errclass.Unavailable, err)))
			return
		}
		c.set(v, nil)
	}()
	return c
}

// Unavailable is a Checker whose verdict is already known: CRIU cannot be
// used, because of err.
func Unavailable(path string, err error) *Checker {
	c := &Checker{done: make(chan struct{})}
	c.set(Verdict{Status: Failed, Path: path, Error: err.Error()},
		fmt.Errorf("checkpoint/restore is not available: %w", errclass.With(errclass.Unavailable, err)))
	close(c.done)
	return c
}

func (c *Checker) set(v Verdict, err error) {
	c.err.Store(&err)
	c.verdict.Store(&v)
}

// Err is nil once CRIU passed its self-test; until then, or when it failed,
// it says why checkpoint and restore are unavailable (errclass.Unavailable).
func (c *Checker) Err() error { return *c.err.Load() }

// Verdict returns the current verdict.
func (c *Checker) Verdict() Verdict { return *c.verdict.Load() }

// Done is closed once the verdict is final.
func (c *Checker) Done() <-chan struct{} { return c.done }

// Use makes the criu at path (a file, or a name looked up on PATH) the one
// libcontainer runs: libcontainer runs "criu" from PATH, so path must be
// named criu, and its directory goes first on this process's PATH. It
// returns the absolute path.
func Use(path string) (string, error) {
	full, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("no criu (%s): run make criu: %w", path, err)
	}
	if full, err = filepath.Abs(full); err != nil {
		return "", err
	}
	if filepath.Base(full) != "criu" {
		return "", errors.New(full + " must be named criu (libcontainer runs \"criu\" from PATH)")
	}
	dir := filepath.Dir(full)
	if os.Getenv("PATH") == "" {
		return full, os.Setenv("PATH", dir)
	}
	return full, os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// Timeout is the deadline of one dump or restore of a container whose
// memory (or checkpoint images) takes memory bytes: base for each GiB
// begun, since writing and reading the pages is what grows with it.
func Timeout(base time.Duration, memory uint64) time.Duration {
	const gib = 1 << 30
	return base * time.Duration(1+memory/gib)
}
