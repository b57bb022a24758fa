package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// requestTypes are the bodies the API decodes, by the fuzzer's kind byte.
var requestTypes = []func() any{
	func() any { return new(api.StartRequest) },
	func() any { return new(api.ExecRequest) },
	func() any { return new(api.PatchRequest) },
	func() any { return new(api.SignalRequest) },
	func() any { return new(api.PullRequest) },
}

// FuzzDecode checks decodeBytes on any body for every request type: it never
// panics, every error is an invalid argument with a message, and what it
// accepts encodes and decodes again to the same value.
func FuzzDecode(f *testing.F) {
	seeds := map[int][]string{
		0: {
			`{"bundlePath": "/containers/redis"}`,
			`{"bundlePath": "/containers/redis", "checkpoint": "other/name"}`,
			`{"bundlepath": "/x"}`, `{"bundlePath": 5}`, `{"bundlePath": "/x"} {}`,
			`{"image": "127.0.0.1:5000/busybox:1", "pull": "missing", "entrypoint": [], "args": ["sh"], "env": ["A=b"], "cwd": "/", "user": "1000:1000", "hostname": "h", "readOnlyRoot": true, "memory": 67108864, "cpuShares": 512, "cpuQuota": 50000, "cpuPeriod": 100000, "pids": 10, "mounts": [{"type": "tmpfs", "destination": "/tmp", "size": 1024, "mode": 1023, "exec": true, "readOnly": true}], "capAdd": ["NET_ADMIN"], "capDrop": ["ALL"]}`,
			`{"image": "x", "entrypoint": null}`, `{"image": "x", "mounts": [{"Type": "bind"}]}`, `{"image": 1}`,
		},
		1: {
			`{"args": ["redis-server", "--bind", "0.0.0.0"], "env": ["PATH=/usr/bin:/bin"], "cwd": "/", "user": {"uid": 1000, "gid": 1000, "additionalGids": [4, 27]}, "terminal": false}`,
			`{"args": []}`, `{"args": null}`, `{"args": [1]}`, `{"user": {"uid": "0"}}`, `{"tty": true}`,
			`{"args": ["\u00e9\ud800"]}`,
		},
		2: {
			`{"status": "paused"}`, `{"status": "running"}`, `{"signal": 9}`, `{"signal": "SIGKILL"}`,
			`{"resources": {"memory": 67108864, "cpuShares": 512, "pids": 50}}`,
			`{"resources": {"memory": -1, "pids": -1}}`, `{"resources": {"mem": 1}}`,
			`{"status": null, "signal": null, "resources": null}`, `{"resources": {"memory": 1e30}}`,
		},
		3: {
			`{"signal": 15}`, `{"signal": "TERM"}`, `{"signal": "15"}`, `{"signal": "sigusr1"}`,
			`{"signal": 0}`, `{"signal": 65}`, `{"signal": -1}`, `{"signal": 1.5}`, `{"signal": true}`,
			`{"signal": "NOPE"}`, `{"signal": ""}`, `{"signal": []}`, `{"signal": 99999999999999999999}`,
			`{"singal": 9}`,
		},
		4: {
			`{"reference": "127.0.0.1:5000/busybox:1"}`, `{"reference": "busybox@sha256:` + strings.Repeat("a", 64) + `"}`,
			`{"reference": 5}`, `{"Reference": "x"}`, `{"ref": "x"}`,
		},
	}
	common := []string{"", " \n\t", "{}", "null", "[]", `"x"`, "1", "{", `{"a":`, "}", "{}{}", "{} x",
		`{"a": 1, "a": 2}`, "\xff\xfe", strings.Repeat("[", 10000)}
	for kind := range requestTypes {
		for _, s := range append(seeds[kind], common...) {
			f.Add(uint8(kind), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		newValue := requestTypes[int(kind)%len(requestTypes)]
		v := newValue()
		err := decodeBytes(body, v)
		if err != nil {
			if !errors.Is(err, errclass.InvalidArgument) {
				t.Fatalf("decode %q into %T: %v is not an invalid argument", body, v, err)
			}
			if strings.TrimSuffix(err.Error(), errclass.InvalidArgument.Error()) == "" {
				t.Fatalf("decode %q into %T: an error without a message", body, v)
			}
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("decoded %q into %+v, which does not encode: %v", body, v, err)
		}
		w := newValue()
		if err := decodeBytes(again, w); err != nil {
			t.Fatalf("decoded %q into %T, encoded it as %s, which does not decode: %v", body, v, again, err)
		}
		// Compared as JSON: an empty list and a missing one mean the same
		// (omitempty), though they differ as Go values.
		twice, err := json.Marshal(w)
		if err != nil || !bytes.Equal(again, twice) {
			t.Fatalf("round trip of %q: %s became %s (%v)", body, again, twice, err)
		}
	})
}

func TestDecodeBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		into any
		want any    // the value, when the body is accepted
		err  string // what the error says, when it is not
	}{
		{"empty is {}", "", new(api.StartRequest), &api.StartRequest{}, ""},
		{"blank is {}", " \r\n\t", new(api.SignalRequest), &api.SignalRequest{}, ""},
		{"start", `{"bundlePath": "/b", "checkpoint": "c"}`, new(api.StartRequest), &api.StartRequest{BundlePath: "/b", Checkpoint: "c"}, ""},
		{"signal name", `{"signal": "SIGHUP"}`, new(api.SignalRequest), &api.SignalRequest{Signal: ptr(api.Signal(1))}, ""},
		{"resources", `{"resources": {"memory": 1024, "pids": 5}}`, new(api.PatchRequest),
			&api.PatchRequest{Resources: &api.Resources{Memory: ptr(int64(1024)), Pids: ptr(int64(5))}}, ""},
		{"start from an image", `{"image": "busybox", "env": ["A=b"], "mounts": [{"type": "tmpfs", "destination": "/t"}], "log": {"maxFiles": 2}}`, new(api.StartRequest),
			&api.StartRequest{Log: api.LogLimits{MaxFiles: 2}, ImageStart: api.ImageStart{Image: "busybox", Env: []string{"A=b"},
				Mounts: []api.Mount{{Type: "tmpfs", Destination: "/t"}}}}, ""},
		{"an image's field in other case", `{"image": "busybox", "readonlyRoot": true}`, new(api.StartRequest), nil, `unknown field "readonlyRoot" (did you mean "readOnlyRoot"?)`},
		{"the embedded struct's name", `{"ImageStart": {"image": "busybox"}}`, new(api.StartRequest), nil, `unknown field "ImageStart"`},
		{"nested unknown field of an image's mount", `{"image": "b", "mounts": [{"type": "tmpfs", "dest": "/t"}]}`, new(api.StartRequest), nil, `unknown field "dest"`},
		{"unknown field", `{"bundlePath": "/b", "bundel": "/c"}`, new(api.StartRequest), nil, `unknown field "bundel"`},
		{"unknown field differing in case", `{"bundlepath": "/b"}`, new(api.StartRequest), nil, `unknown field "bundlepath"`},
		{"field in upper case", `{"Signal": 9}`, new(api.SignalRequest), nil, `unknown field "Signal"`},
		{"nested field in other case", `{"resources": {"Memory": 1}}`, new(api.PatchRequest), nil, `unknown field "Memory"`},
		{"nested unknown field", `{"user": {"uid": 0, "gid": 0, "groups": []}}`, new(api.ExecRequest), nil, `unknown field "groups"`},
		{"two values", `{} {}`, new(api.StartRequest), nil, "more than one value"},
		{"trailing garbage", `{} x`, new(api.StartRequest), nil, "malformed JSON"},
		{"trailing brace", `{"signal": 9}}`, new(api.SignalRequest), nil, "malformed JSON"},
		{"trailing bracket", `{}]`, new(api.StartRequest), nil, "malformed JSON"},
		{"duplicate in other case", `{"signal": 15, "SIGNAL": 9}`, new(api.SignalRequest), nil, `unknown field "SIGNAL" (did you mean "signal"?)`},
		{"truncated", `{"bundlePath": "/b"`, new(api.StartRequest), nil, "unexpected end of body"},
		{"syntax", `{"bundlePath" "/b"}`, new(api.StartRequest), nil, "malformed JSON at byte"},
		{"type", `{"args": "sh"}`, new(api.ExecRequest), nil, `field "args": cannot use a JSON string`},
		{"bad signal", `{"signal": 0}`, new(api.SignalRequest), nil, "signal 0: must be between 1 and 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeBytes([]byte(tc.body), tc.into)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("decode %q: %v", tc.body, err)
				}
				if !reflect.DeepEqual(tc.into, tc.want) {
					t.Errorf("decode %q: %+v, want %+v", tc.body, tc.into, tc.want)
				}
				return
			}
			if !errors.Is(err, errclass.InvalidArgument) || !strings.Contains(fmt.Sprint(err), tc.err) {
				t.Errorf("decode %q: %v, want an invalid argument mentioning %q", tc.body, err, tc.err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDescribeJSONError(t *testing.T) {
	// decodeErr is what encoding/json says about body decoded into v.
	decodeErr := func(body string, v any) error {
		err := json.NewDecoder(strings.NewReader(body)).Decode(v)
		if err == nil {
			t.Fatalf("%s decodes into %T", body, v)
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"syntax", decodeErr(`{"bundlePath" 1}`, new(api.StartRequest)),
			"malformed JSON at byte 15: invalid character '1' after object key"},
		{"type of a field", decodeErr(`{"args": 5}`, new(api.ExecRequest)),
			`field "args": cannot use a JSON number as []string`},
		{"type of a nested field", decodeErr(`{"user": {"uid": "0"}}`, new(api.ExecRequest)),
			`field "user.uid": cannot use a JSON string as int`},
		{"type of the body", decodeErr(`[1]`, new(api.StartRequest)),
			"body: cannot use a JSON array as api.StartRequest"},
		{"unexpected end", decodeErr(`{"args": [`, new(api.ExecRequest)),
			"malformed JSON: unexpected end of body"},
		{"unexpected end wrapped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF),
			"malformed JSON: unexpected end of body"},
		{"value", decodeErr(`{"signal": "NOPE"}`, new(api.SignalRequest)),
			`signal "NOPE": unknown signal name`},
		{"value error", &api.ValueError{Msg: "signal 0: must be between 1 and 64"},
			"signal 0: must be between 1 and 64"},
		{"unknown field", errors.New(`json: unknown field "singal"`),
			`unknown field "singal"`},
		{"anything else", errors.New("json: cannot unmarshal into Go value of type func()"),
			"malformed JSON: cannot unmarshal into Go value of type func()"},
		{"not from json", errors.New("connection reset"),
			"malformed JSON: connection reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeJSONError(tc.err); got != tc.want {
				t.Errorf("describeJSONError(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
