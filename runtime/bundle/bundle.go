// Package bundle loads and validates OCI bundles: a directory holding
// config.json (an OCI runtime spec) and the root filesystem it names.
//
// Load makes every path in the spec absolute against the bundle directory,
// so the spec can be converted without changing the daemon's working
// directory (a process-wide setting that thousands of parallel starts would
// fight over). Errors name the file and the field, and wrap
// runtime.ErrInvalidArgument.
package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

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

func readConfig(configPath string) ([]byte, error) {
	f, err := os.Open(configPath)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, invalid("%s does not exist", configPath)
		}
		return nil, invalid("open %s: %v", configPath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, invalid("stat %s: %v", configPath, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, invalid("%s is not a regular file", configPath)
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
	if spec.Process.Terminal {
		return invalid("%s: field process.terminal: terminals are not supported", configPath)
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
	if spec.Linux == nil {
		return invalid("%s: field linux is missing", configPath)
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
	return fmt.Errorf("bundle: "+format+": %w", append(args, runtime.ErrInvalidArgument)...)
}
