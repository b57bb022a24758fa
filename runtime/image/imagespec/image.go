package imagespec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/troupe-run/troupe/runtime"
)

// MaxConfigSize bounds an image configuration blob. Real ones are a few KiB;
// the largest (long histories, many labels) stay well under 1 MiB.
const MaxConfigSize = 4 << 20

// Image is the part of an OCI image configuration that shapes a container:
// its "config" object. The layers ("rootfs") and the history say nothing
// about how to run it and are not read.
type Image struct {
	// User is the user to run as, "name", "uid", "name:group", "uid:gid";
	// empty means root.
	User string
	// Env is the image's environment, KEY=value.
	Env []string
	// Entrypoint and Cmd make the command line, entrypoint first.
	Entrypoint, Cmd []string
	// WorkingDir is the working directory, absolute; empty means "/".
	WorkingDir string
	// StopSignal is the signal that asks the container to stop, as the
	// image gives it ("SIGTERM", "15").
	StopSignal string
	// Labels are the image's labels. Generate does not put them in the
	// spec (see the package doc); they are here for the daemon to show.
	Labels map[string]string
}

// configFile is an image configuration blob as far as it is read. The OCI
// image-spec and Docker's image format share these names (encoding/json
// matches them whatever their case).
type configFile struct {
	OS     string `json:"os"`
	Config *struct {
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Entrypoint stringList        `json:"Entrypoint"`
		Cmd        stringList        `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		StopSignal string            `json:"StopSignal"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

// stringList is a list of strings that old Docker images may also give as
// one string (Docker's own decoder has taken both since its early days):
// "Entrypoint": "/bin/sh" is ["/bin/sh"].
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*l = nil
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*l = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a list of strings, got %s", truncate(string(b), 64))
	}
	*l = []string{s}
	return nil
}

// ParseImage reads an image configuration blob (OCI or Docker) and checks
// what a container would trip over later: an environment entry without
// '=', a relative working directory, an unknown stop signal, a NUL byte in
// the command. Errors carry errclass.InvalidArgument.
func ParseImage(data []byte) (Image, error) {
	if len(data) > MaxConfigSize {
		return Image{}, invalid("image config: %d bytes, more than the %d allowed", len(data), MaxConfigSize)
	}
	var cf configFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return Image{}, invalid("image config: not valid JSON: %v", err)
	}
	if cf.OS != "" && cf.OS != "linux" {
		return Image{}, invalid("image config: the image is for %q, not linux", cf.OS)
	}
	var img Image
	if c := cf.Config; c != nil {
		img = Image{User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
			WorkingDir: c.WorkingDir, StopSignal: c.StopSignal, Labels: c.Labels}
	}
	if err := img.Validate(); err != nil {
		return Image{}, err
	}
	return img, nil
}

// Validate checks img as ParseImage does, for an Image made by hand.
func (img Image) Validate() error {
	if err := runtime.ValidEnv(img.Env); err != nil {
		return invalid("image config: %v", err)
	}
	for i, a := range append(append([]string(nil), img.Entrypoint...), img.Cmd...) {
		if strings.IndexByte(a, 0) >= 0 {
			return invalid("image config: entrypoint and cmd, word %d %q: contains a NUL byte", i, a)
		}
	}
	// Docker resolves a relative WORKDIR at build time; a config that still
	// has one was not made by a builder and means nothing sure.
	if img.WorkingDir != "" && !path.IsAbs(img.WorkingDir) {
		return invalid("image config: WorkingDir %q: must be an absolute path", img.WorkingDir)
	}
	if strings.IndexByte(img.WorkingDir, 0) >= 0 || strings.IndexByte(img.User, 0) >= 0 {
		return invalid("image config: WorkingDir or User contains a NUL byte")
	}
	if img.StopSignal != "" {
		if _, err := parseSignal(img.StopSignal); err != nil {
			return invalid("image config: StopSignal: %v", err)
		}
	}
	return nil
}

// parseSignal reads a signal as images give it: a number, or a name with or
// without the SIG prefix, in any case.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("signal %s: must be between 1 and 64", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: unknown signal name", s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
