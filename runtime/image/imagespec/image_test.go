package imagespec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/errclass"
)

func TestParseImage(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		want    Image
		wantErr string
	}{
		{
			name: "oci",
			config: `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]},
				"config":{"User":"app:app","Env":["PATH=/bin","A=1"],"Entrypoint":["/docker-entrypoint.sh"],
				"Cmd":["nginx","-g","daemon off;"],"WorkingDir":"/srv","StopSignal":"SIGQUIT",
				"Labels":{"maintainer":"x"},"ExposedPorts":{"80/tcp":{}}}}`,
			want: Image{User: "app:app", Env: []string{"PATH=/bin", "A=1"}, Entrypoint: []string{"/docker-entrypoint.sh"},
				Cmd: []string{"nginx", "-g", "daemon off;"}, WorkingDir: "/srv", StopSignal: "SIGQUIT",
				Labels: map[string]string{"maintainer": "x"}},
		},
		{
			// Docker's own configs have a container_config and may give
			// the entrypoint as one string, and null for Cmd.
			name:   "docker",
			config: `{"os":"linux","container_config":{"Cmd":["ignored"]},"config":{"Entrypoint":"/bin/sh","Cmd":null,"StopSignal":"15"}}`,
			want:   Image{Entrypoint: []string{"/bin/sh"}, StopSignal: "15"},
		},
		{name: "no config", config: `{"os":"linux"}`, want: Image{}},
		{name: "lower-case keys", config: `{"config":{"cmd":["true"],"workingdir":"/w"}}`, want: Image{Cmd: []string{"true"}, WorkingDir: "/w"}},
		{name: "windows", config: `{"os":"windows","config":{}}`, wantErr: `the image is for "windows"`},
		{name: "not json", config: `{"config":`, wantErr: "not valid JSON"},
		{name: "cmd of numbers", config: `{"config":{"Cmd":[1,2]}}`, wantErr: "want a list of strings"},
		{name: "env without =", config: `{"config":{"Env":["FOO"]}}`, wantErr: "want KEY=value"},
		{name: "relative workdir", config: `{"config":{"WorkingDir":"srv"}}`, wantErr: "must be an absolute path"},
		{name: "unknown stop signal", config: `{"config":{"StopSignal":"SIGNOPE"}}`, wantErr: "unknown signal name"},
		{name: "stop signal out of range", config: `{"config":{"StopSignal":"65"}}`, wantErr: "between 1 and 64"},
		{name: "NUL in cmd", config: `{"config":{"Cmd":["a\u0000b"]}}`, wantErr: "NUL"},
		{name: "too large", config: `{"config":{"Labels":{"x":"` + strings.Repeat("a", MaxConfigSize) + `"}}}`, wantErr: "more than the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseImage([]byte(tt.config))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errclass.InvalidArgument) {
					t.Fatalf("err = %v, want an invalid argument with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
