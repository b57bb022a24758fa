// Package bundle loads and validates OCI bundles: a directory holding
// config.json (an OCI runtime spec) and the root filesystem it names.
//
// Load makes every path in the spec absolute against the bundle directory,
// so the spec can be converted without changing the daemon's working
// directory (a process-wide setting that thousands of parallel starts would
// fight over). Errors name the file and the field, and wrap
// errclass.InvalidArgument.
package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

// ConfigFile is the name of the spec file inside a bundle.
const ConfigFile = "config.json"

// maxConfigSize bounds config.json; real specs are a few KiB.
const maxConfigSize = 4 << 20

// Bundle is a loaded, validated OCI bundle.
type Bundle struct {
	// Path is the bundle directory, absolute and clean.
	Path string
	// Spec is the runtime spec with the root path and relative bind mount
	// sources made absolute.
	Spec *specs.Spec
}

// Load reads and validates the bundle at path.
func Load(path string) (*Bundle, error) {
	if path == "" {
		return nil, invalid("bundlePath is required")
	}
	if !filepath.IsAbs(path) {
		return nil, invalid("bundlePath %q must be absolute", path)
	}
	path = filepath.Clean(path)
	configPath := filepath.Join(path, ConfigFile)
	data, err := readConfig(configPath)
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&spec); err != nil {
		return nil, invalid("%s: not a valid OCI runtime spec: %v", configPath, err)
	}
	if err := validate(configPath, path, &spec); err != nil {
		return nil, err
	}
	return &Bundle{Path: path, Spec: &spec}, nil
}

// Write makes a bundle at dir holding spec, for a container whose spec
// troupe made (from an image). It does not validate the spec: the start
// that follows loads the bundle (Load), which does, once. The spec's root
// is expected to be an absolute path outside dir.
func Write(dir string, spec *specs.Spec) error {
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o600); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	return nil
}

// readConfig reads config.json, which must be a regular file. Opening
// anything else can block for ever (a FIFO without a writer: the start, and
// the slot it holds, would never end) or act (a device), so the file is
// checked before it is opened, and what was opened is checked again (it may
// have been swapped since); O_NONBLOCK makes that open return at once even
// for a FIFO put there in between.
func readConfig(configPath string) ([]byte, error) {
	fi, err := os.Stat(configPath)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, invalid("%s does not exist", configPath)
		}
		return nil, invalid("stat %s: %v", configPath, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, invalid("%s is not a regular file (%s)", configPath, fileType(fi.Mode()))
	}
	f, err := os.OpenFile(configPath, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, invalid("%s does not exist", configPath)
		}
		return nil, invalid("open %s: %v", configPath, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, invalid("stat %s: %v", configPath, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, invalid("%s is not a regular file (%s)", configPath, fileType(fi.Mode()))
	}
	if fi.Size() > maxConfigSize {
		return nil, invalid("%s is %d bytes, more than the %d allowed", configPath, fi.Size(), maxConfigSize)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, invalid("read %s: %v", configPath, err)
	}
	return data, nil
}

func validate(configPath, dir string, spec *specs.Spec) error {
	if spec.Version == "" {
		return invalid("%s: field ociVersion is missing", configPath)
	}
	if spec.Process == nil {
		return invalid("%s: field process is missing", configPath)
	}
	if len(spec.Process.Args) == 0 {
		return invalid("%s: field process.args is empty", configPath)
	}
	if err := validateProcess(configPath, spec.Process); err != nil {
		return err
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return invalid("%s: field root.path is missing", configPath)
	}
	if !filepath.IsAbs(spec.Root.Path) {
		spec.Root.Path = filepath.Join(dir, spec.Root.Path)
	}
	fi, err := os.Stat(spec.Root.Path)
	if err != nil {
		return invalid("%s: field root.path: %v", configPath, err)
	}
	if !fi.IsDir() {
		return invalid("%s: field root.path: %s is not a directory", configPath, spec.Root.Path)
	}
	// libcontainer takes only the real path of a rootfs: a symlink could
	// point elsewhere by the time the container's mounts are made.
	if real, err := filepath.EvalSymlinks(spec.Root.Path); err == nil && real != filepath.Clean(spec.Root.Path) {
		return invalid("%s: field root.path: %s is a symlink or lies under one; give the real directory, %s", configPath, spec.Root.Path, real)
	}
	if spec.Linux == nil {
		return invalid("%s: field linux is missing", configPath)
	}
	if err := validateResources(configPath, spec.Linux.Resources); err != nil {
		return err
	}
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		if !filepath.IsAbs(m.Destination) {
			return invalid("%s: field mounts[%d].destination %q must be absolute", configPath, i, m.Destination)
		}
		if isBind(m) && m.Source != "" && !filepath.IsAbs(m.Source) {
			m.Source = filepath.Join(dir, m.Source)
		}
	}
	return nil
}

// validateProcess checks the init's process: what the kernel would refuse
// once the container is half made is refused here, naming the field.
func validateProcess(configPath string, p *specs.Process) error {
	for i, a := range p.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return invalid("%s: field process.args[%d] %q: contains a NUL byte", configPath, i, a)
		}
	}
	if p.Cwd != "" && !filepath.IsAbs(p.Cwd) {
		return invalid("%s: field process.cwd %q: must be an absolute path", configPath, p.Cwd)
	}
	if err := runtime.ValidEnv(p.Env); err != nil {
		return fmt.Errorf("bundle: %s: field process.%w", configPath, err)
	}
	u := runtime.User{UID: int(p.User.UID), GID: int(p.User.GID)}
	for _, g := range p.User.AdditionalGids {
		u.AdditionalGids = append(u.AdditionalGids, int(g))
	}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("bundle: %s: field process.%w", configPath, err)
	}
	for i, rl := range p.Rlimits {
		if rl.Soft > rl.Hard {
			return invalid("%s: field process.rlimits[%d] (%s): the soft limit %d is above the hard limit %d", configPath, i, rl.Type, rl.Soft, rl.Hard)
		}
	}
	return nil
}

// validateResources checks the limits the kernel would refuse while the
// container starts. Zero means unset for libcontainer, as it does here.
func validateResources(configPath string, r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if r.Memory != nil && r.Memory.Limit != nil {
		if m := *r.Memory.Limit; m != 0 && m != -1 && m < runtime.MinMemory {
			return invalid("%s: field linux.resources.memory.limit %d: must be -1 (no limit) or at least %d bytes (%d MiB): a container's start alone takes about 4.5 MiB",
				configPath, m, runtime.MinMemory, runtime.MinMemory>>20)
		}
	}
	if r.CPU != nil && r.CPU.Shares != nil {
		if s := *r.CPU.Shares; s != 0 && (s < runtime.MinCPUShares || s > runtime.MaxCPUShares) {
			return invalid("%s: field linux.resources.cpu.shares %d: must be between %d and %d", configPath, s, runtime.MinCPUShares, runtime.MaxCPUShares)
		}
	}
	return nil
}

// fileType names the type of a file that is not a regular one.
func fileType(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return "mode " + m.String()
}

func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("bundle: "+format+": %w", append(args, errclass.InvalidArgument)...)
}
