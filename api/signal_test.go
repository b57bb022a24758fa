package api

import (
	"errors"
	"strings"
	"testing"
)

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
			var ve *ValueError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("UnmarshalJSON(%s) = %d, %v; want a value error mentioning %q", tc.json, s, err, tc.err)
			}
			if s != 0 {
				t.Errorf("UnmarshalJSON(%s) failed but set %d", tc.json, s)
			}
		})
	}
}
