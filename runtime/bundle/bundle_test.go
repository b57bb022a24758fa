package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/runtime"
)

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
		{name: "terminal", config: strings.Replace(good, `"cwd": "/"`, `"cwd": "/", "terminal": true`, 1), inErr: "terminal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, ConfigFile))
			if tc.config != "" {
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
			if !errors.Is(err, runtime.ErrInvalidArgument) {
				t.Fatalf("Load: %v, want invalid argument", err)
			}
			if !strings.Contains(err.Error(), tc.inErr) {
				t.Errorf("error %q does not mention %q", err, tc.inErr)
			}
		})
	}
}
