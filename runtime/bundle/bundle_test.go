package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/troupe-run/troupe/errclass"
)

// fifo, as a test's config, makes config.json a FIFO.
const fifo = "<fifo>"

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	const good = `{"ociVersion": "1.2.0", "process": {"args": ["sh"], "cwd": "/"},
		"root": {"path": "rootfs"}, "linux": {},
		"mounts": [{"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]}]}`
	tests := []struct {
		name   string
		config string // "" means no config.json
		path   string // default: the bundle dir
		inErr  string // "" means success
	}{
		{name: "valid", config: good},
		{name: "relative path", config: good, path: "bundle", inErr: "must be absolute"},
		{name: "empty path", config: good, path: "-", inErr: "bundlePath is required"},
		{name: "missing config.json", inErr: "config.json does not exist"},
		{name: "invalid JSON", config: `{"ociVersion": `, inErr: "not a valid OCI runtime spec"},
		{name: "wrong type", config: `{"ociVersion": 3}`, inErr: "not a valid OCI runtime spec"},
		{name: "no version", config: strings.Replace(good, `"ociVersion": "1.2.0",`, "", 1), inErr: "ociVersion"},
		{name: "no args", config: strings.Replace(good, `["sh"]`, `[]`, 1), inErr: "process.args"},
		{name: "missing root", config: strings.Replace(good, `"rootfs"`, `"nothere"`, 1), inErr: "root.path"},
		{name: "no linux", config: strings.Replace(good, `"linux": {},`, "", 1), inErr: "field linux"},
		{name: "relative destination", config: strings.Replace(good, `"/data"`, `"data"`, 1), inErr: "mounts[0].destination"},
		{name: "config.json a FIFO", config: fifo, inErr: "not a regular file (a FIFO)"},
		{name: "relative cwd", config: strings.Replace(good, `"cwd": "/"`, `"cwd": "tmp"`, 1), inErr: "process.cwd"},
		{name: "env without =", config: strings.Replace(good, `"cwd": "/"`, `"cwd": "/", "env": ["A=1", "PATH"]`, 1), inErr: `process.env[1] "PATH"`},
		{name: "uid -1", config: strings.Replace(good, `"cwd": "/"`, `"cwd": "/", "user": {"uid": 4294967295, "gid": 0}`, 1), inErr: "process.user.uid 4294967295"},
		{name: "rlimit soft above hard", config: strings.Replace(good, `"cwd": "/"`, `"cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]`, 1), inErr: "process.rlimits[0] (RLIMIT_NOFILE)"},
		{name: "memory limit 1", config: strings.Replace(good, `"linux": {}`, `"linux": {"resources": {"memory": {"limit": 1}}}`, 1), inErr: "linux.resources.memory.limit 1"},
		{name: "cpu shares 1", config: strings.Replace(good, `"linux": {}`, `"linux": {"resources": {"cpu": {"shares": 1}}}`, 1), inErr: "linux.resources.cpu.shares 1"},
		{name: "rootfs a symlink", config: strings.Replace(good, `"rootfs"`, `"rootfs-link"`, 1), inErr: "symlink"},
	}
	if err := os.Symlink("rootfs", filepath.Join(dir, "rootfs-link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, ConfigFile))
			if tc.config == fifo {
				// Opened for reading, a FIFO without a writer blocks.
				if err := syscall.Mkfifo(filepath.Join(dir, ConfigFile), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if tc.config != "" {
				if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := dir
			switch tc.path {
			case "-":
				path = ""
			case "":
			default:
				path = tc.path
			}
			b, err := Load(path)
			if tc.inErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if b.Spec.Root.Path != filepath.Join(dir, "rootfs") {
					t.Errorf("root path = %q, want it made absolute", b.Spec.Root.Path)
				}
				if b.Spec.Mounts[0].Source != filepath.Join(dir, "data") {
					t.Errorf("bind source = %q, want it made absolute", b.Spec.Mounts[0].Source)
				}
				return
			}
			if !errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("Load: %v, want invalid argument", err)
			}
			if !strings.Contains(err.Error(), tc.inErr) {
				t.Errorf("error %q does not mention %q", err, tc.inErr)
			}
		})
	}
}
