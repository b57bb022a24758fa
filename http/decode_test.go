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

	"github.com/troupe-run/troupe/runtime"
)

// requestTypes are the bodies the API decodes, by the fuzzer's kind byte.
var requestTypes = []func() any{
	func() any { return new(startRequest) },
	func() any { return new(execRequest) },
	func() any { return new(patchRequest) },
	func() any { return new(signalRequest) },
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
			if !errors.Is(err, runtime.ErrInvalidArgument) {
				t.Fatalf("decode %q into %T: %v is not an invalid argument", body, v, err)
			}
			if strings.TrimSuffix(err.Error(), runtime.ErrInvalidArgument.Error()) == "" {
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
		{"empty is {}", "", new(startRequest), &startRequest{}, ""},
		{"blank is {}", " \r\n\t", new(signalRequest), &signalRequest{}, ""},
		{"start", `{"bundlePath": "/b", "checkpoint": "c"}`, new(startRequest), &startRequest{BundlePath: "/b", Checkpoint: "c"}, ""},
		{"signal name", `{"signal": "SIGHUP"}`, new(signalRequest), &signalRequest{Signal: ptr(Signal(1))}, ""},
		{"resources", `{"resources": {"memory": 1024, "pids": 5}}`, new(patchRequest),
			&patchRequest{Resources: &runtime.Resources{Memory: ptr(int64(1024)), Pids: ptr(int64(5))}}, ""},
		{"unknown field", `{"bundlePath": "/b", "bundel": "/c"}`, new(startRequest), nil, `unknown field "bundel"`},
		{"unknown field differing in case", `{"bundlepath": "/b"}`, new(startRequest), nil, `unknown field "bundlepath"`},
		{"field in upper case", `{"Signal": 9}`, new(signalRequest), nil, `unknown field "Signal"`},
		{"nested field in other case", `{"resources": {"Memory": 1}}`, new(patchRequest), nil, `unknown field "Memory"`},
		{"nested unknown field", `{"user": {"uid": 0, "gid": 0, "groups": []}}`, new(execRequest), nil, `unknown field "groups"`},
		{"two values", `{} {}`, new(startRequest), nil, "more than one value"},
		{"trailing garbage", `{} x`, new(startRequest), nil, "malformed JSON"},
		{"trailing brace", `{"signal": 9}}`, new(signalRequest), nil, "malformed JSON"},
		{"trailing bracket", `{}]`, new(startRequest), nil, "malformed JSON"},
		{"duplicate in other case", `{"signal": 15, "SIGNAL": 9}`, new(signalRequest), nil, `unknown field "SIGNAL" (did you mean "signal"?)`},
		{"truncated", `{"bundlePath": "/b"`, new(startRequest), nil, "unexpected end of body"},
		{"syntax", `{"bundlePath" "/b"}`, new(startRequest), nil, "malformed JSON at byte"},
		{"type", `{"args": "sh"}`, new(execRequest), nil, `field "args": cannot use a JSON string`},
		{"bad signal", `{"signal": 0}`, new(signalRequest), nil, "signal 0: must be between 1 and 64"},
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
			if !errors.Is(err, runtime.ErrInvalidArgument) || !strings.Contains(fmt.Sprint(err), tc.err) {
				t.Errorf("decode %q: %v, want an invalid argument mentioning %q", tc.body, err, tc.err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSignalUnmarshalJSON(t *testing.T) {
	for _, tc := range []struct {
		json string
		want Signal // 0: an error
		err  string // what the error mentions
	}{
		{`15`, 15, ""},
		{`1`, 1, ""},
		{`64`, 64, ""},
		{`"15"`, 15, ""},
		{`"SIGTERM"`, 15, ""},
		{`"TERM"`, 15, ""},
		{`"term"`, 15, ""},
		{`"SigKill"`, 9, ""},
		{`"KILL"`, 9, ""},
		{`"SIGUSR1"`, 10, ""},
		{`"HUP"`, 1, ""},
		{`0`, 0, "between 1 and 64"},
		{`65`, 0, "65"},
		{`99`, 0, "99"},
		{`-9`, 0, "-9"},
		{`"0"`, 0, "between 1 and 64"},
		{`"99"`, 0, "99"},
		{`"NOPE"`, 0, `"NOPE": unknown signal name`},
		{`"SIG"`, 0, "unknown signal name"},
		{`""`, 0, "unknown signal name"},
		{`" 15"`, 0, "unknown signal name"},
		{`"SIGTERM "`, 0, "unknown signal name"},
		{`1.5`, 0, "want a number or a name"},
		{`1e1`, 0, "want a number or a name"},
		{`true`, 0, "want a number or a name"},
		{`[15]`, 0, "want a number or a name"},
		{`{}`, 0, "want a number or a name"},
		{`99999999999999999999`, 0, "want a number or a name"},
	} {
		t.Run(tc.json, func(t *testing.T) {
			var s Signal
			err := s.UnmarshalJSON([]byte(tc.json))
			if tc.want != 0 {
				if err != nil || s != tc.want {
					t.Errorf("UnmarshalJSON(%s) = %d, %v; want %d", tc.json, s, err, tc.want)
				}
				return
			}
			var ve *valueError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("UnmarshalJSON(%s) = %d, %v; want a value error mentioning %q", tc.json, s, err, tc.err)
			}
			if s != 0 {
				t.Errorf("UnmarshalJSON(%s) failed but set %d", tc.json, s)
			}
		})
	}
}

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
		{"syntax", decodeErr(`{"bundlePath" 1}`, new(startRequest)),
			"malformed JSON at byte 15: invalid character '1' after object key"},
		{"type of a field", decodeErr(`{"args": 5}`, new(execRequest)),
			`field "args": cannot use a JSON number as []string`},
		{"type of a nested field", decodeErr(`{"user": {"uid": "0"}}`, new(execRequest)),
			`field "user.uid": cannot use a JSON string as int`},
		{"type of the body", decodeErr(`[1]`, new(startRequest)),
			"body: cannot use a JSON array as http.startRequest"},
		{"unexpected end", decodeErr(`{"args": [`, new(execRequest)),
			"malformed JSON: unexpected end of body"},
		{"unexpected end wrapped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF),
			"malformed JSON: unexpected end of body"},
		{"value", decodeErr(`{"signal": "NOPE"}`, new(signalRequest)),
			`signal "NOPE": unknown signal name`},
		{"value error", &valueError{"signal 0: must be between 1 and 64"},
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
